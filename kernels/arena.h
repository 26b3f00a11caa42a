/* imb_arena: a bump allocator for one role (activations, ...), reset every step.
 * Blocks are kept across resets, so the same allocation sequence gets the same
 * addresses every step (what CUDA graph capture needs). In debug mode every
 * allocation is poisoned with NaN and followed by a guard region that
 * imb_arena_check_guards verifies (out-of-bounds writes). */
#ifndef IMB_ARENA_H
#define IMB_ARENA_H
#include <stddef.h>
#include "tensor.h"

#define IMB_ARENA_ALIGN 256
#define IMB_GUARD_BYTES 256
#define IMB_POISON 0x7fc0dead   /* a quiet NaN */
#define IMB_CANARY 0x5aa5c33cu

typedef struct imb_arena_block { char *base; size_t cap, used; } imb_arena_block;

typedef struct imb_arena {
    imb_device device;
    const char *role;
    imb_arena_block *blocks;
    int nblocks, cur;
    size_t min_block;
    size_t peak, in_use;
    int debug;
    void **guards; int nguards, capguards;   /* debug: start of each guard region */
    /* CUDA graphs (kernels/graph.c): frozen refuses a new block (it would be a cudaMalloc
     * inside a capture) and notes it in grow_refused; quiet skips the debug fills (a replay's
     * host walk touches no device memory) */
    int frozen, grow_refused, quiet;
    char err[256];
} imb_arena;

void imb_arena_init(imb_arena *a, imb_device dev, const char *role, size_t min_block);
void imb_arena_free(imb_arena *a);
/* NULL on failure with a->err set. Memory is poisoned in debug mode, else uninitialised. */
void *imb_arena_alloc(imb_arena *a, size_t bytes);
void imb_arena_reset(imb_arena *a);
/* debug only: index of the first broken guard, or -1 if all intact */
int imb_arena_check_guards(const imb_arena *a);
#endif
