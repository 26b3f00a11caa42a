/* Checkpoints in the safetensors format: parameters, AdamW state and the resume position.
 *
 * File: 8-byte little-endian header length N, N bytes of JSON header (padded with
 * spaces to a multiple of 8), then the tensor data, densely packed in header order,
 * offsets relative to the first byte after the header. Tensors: every parameter under
 * its own name ("blocks.0.attn.qkv.weight", F32, its shape), then "optim.m.<name>" and
 * "optim.v.<name>" (AdamW moments, same shapes). "__metadata__" holds strings (the
 * format allows nothing else): format ("imbench"), format_version, step, adamw_t,
 * seed, ctx_step, loader_epoch, loader_batch, task, backbone, preset, protocol_hash,
 * commit. Python reads it with safetensors.torch.load_file / safetensors.numpy.
 *
 * Save writes <path>.tmp.XXXXXX in the same directory, fsyncs it, renames it over
 * path and fsyncs the directory: a crash leaves the old checkpoint or the new one,
 * never a torn file. Load validates the whole file and reads every tensor into host
 * memory before touching the model, so a failed load leaves it as it was. */
#ifndef IMB_CHECKPOINT_H
#define IMB_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "ctx.h"

#define IMB_CKPT_VERSION 1

typedef struct imb_ckpt_meta {
    int64_t step;              /* optimizer steps completed */
    int64_t adamw_t;           /* imb_adamw.t */
    uint64_t seed;             /* ctx->seed */
    uint64_t ctx_step;         /* ctx->step (per-step randomness stream); filled by save from ctx */
    int64_t loader_epoch, loader_batch;   /* next batch the loader yields */
    char task[64], backbone[64], preset[64], protocol_hash[32], commit[64];
    int version;               /* on load: format_version, 0 for a file without imbench metadata */
} imb_ckpt_meta;

/* Parameters (data), AdamW m and v, and meta (NULL: zeros). seed and ctx_step are taken
 * from ctx, commit from the build; the other fields from meta. */
int imb_ckpt_save(imb_ctx *ctx, const char *path, const imb_ckpt_meta *meta, char *err, size_t errn);

/* Loads every parameter of ctx (present, F32, same shape). load_optim = 1 (resume):
 * also optim.m/optim.v and the imbench metadata, and restores ctx->seed and ctx->step.
 * load_optim = 0 (weights only): optim.* tensors and metadata are not required, so a
 * file written by PyTorch's safetensors loads. Any other tensor in the file is an
 * error (as load_state_dict(strict=True)). meta_out may be NULL. Errors name the file
 * and the tensor; on error the model, optimizer state and ctx are unchanged. */
int imb_ckpt_load(imb_ctx *ctx, const char *path, imb_ckpt_meta *meta_out, int load_optim, char *err, size_t errn);

static inline int imb_ckpt_load_weights(imb_ctx *ctx, const char *path, char *err, size_t errn) {
    return imb_ckpt_load(ctx, path, NULL, 0, err, errn);
}
#endif
