/* Data-parallel process groups: the rank of this process (from --nproc or an external
 * launcher's environment), the rendezvous that hands rank 0's NCCL id to every rank, and the
 * one-host launcher behind --nproc. */
#ifndef IMB_LAUNCH_H
#define IMB_LAUNCH_H
#include <stddef.h>

typedef struct imb_rank_info {
    int rank, world, local_rank;
    char init[512];     /* rendezvous spec: "file:PATH" or "tcp:HOST:PORT"; "" when world == 1 */
} imb_rank_info;

/* Fills r from, in order: IMB_RANK / IMB_WORLD / IMB_LOCAL_RANK / IMB_INIT (set by --nproc);
 * OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK (mpirun); SLURM_PROCID / SLURM_NTASKS /
 * SLURM_LOCALID (srun); RANK / WORLD_SIZE / LOCAL_RANK (torchrun style); else one process.
 * init (--init, may be NULL) overrides IMB_INIT. A group of several ranks needs an init spec.
 * Returns 0, or -1 with the variable and value at fault in err. */
int imb_rank_from_env(imb_rank_info *r, const char *init, char *err, size_t errn);

/* Rank 0 publishes n bytes (e.g. an ncclUniqueId), every other rank receives them:
 *  file:PATH     rank 0 writes PATH atomically (temp file + rename); the others poll for it
 *                (a shared file system across hosts); the caller removes it when done.
 *  tcp:HOST:PORT rank 0 listens on PORT and sends the bytes to world - 1 connections; the
 *                others connect to HOST:PORT, retrying until timeout_s.
 * Returns 0, or -1 with the spec and the failing step in err. */
int imb_rendezvous(const char *spec, int rank, int world, void *bytes, size_t n, double timeout_s, char *err,
                   size_t errn);

/* --nproc N: runs this program (argv with --nproc and its value removed) N times on this
 * host with IMB_RANK, IMB_WORLD, IMB_LOCAL_RANK, a file: rendezvous in a fresh temp folder
 * and NCCL_NVLS_ENABLE=0 (no NVLink multicast) in their environment; waits for all. When a
 * rank fails the others are terminated. Returns the process exit code: 0 when every rank
 * succeeded, else the first failing rank's code (or 1 with err set when launching failed). */
int imb_launch(int nproc, int argc, char **argv, char *err, size_t errn);
#endif
