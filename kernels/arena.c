/* imb_arena: block-list bump allocator with optional poison and guard regions. */
#include "arena.h"
#include "mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void imb_arena_init(imb_arena *a, imb_device dev, const char *role, size_t min_block) {
    memset(a, 0, sizeof *a);
    a->device = dev;
    a->role = role;
    a->min_block = min_block ? min_block : (size_t)64 << 20;
}

void imb_arena_free(imb_arena *a) {
    for (int i = 0; i < a->nblocks; i++) imb_mem_free(a->device, a->blocks[i].base);
    free(a->blocks);
    free(a->guards);
    memset(a, 0, sizeof *a);
}

static size_t align_up(size_t n) { return (n + IMB_ARENA_ALIGN - 1) & ~(size_t)(IMB_ARENA_ALIGN - 1); }

void *imb_arena_alloc(imb_arena *a, size_t bytes) {
    size_t need = align_up(bytes ? bytes : 1) + (a->debug ? IMB_GUARD_BYTES : 0);
    while (a->cur < a->nblocks && a->blocks[a->cur].cap - a->blocks[a->cur].used < need) {
        /* A block too small for this request is skipped; the next reset starts over. */
        a->cur++;
    }
    if (a->cur == a->nblocks) {
        if (a->frozen) {
            a->grow_refused = 1;
            snprintf(a->err, sizeof a->err, "%s arena: would grow by %zu bytes inside a CUDA graph capture", a->role, need);
            return NULL;
        }
        imb_arena_block *nb = realloc(a->blocks, sizeof *nb * (size_t)(a->nblocks + 1));
        if (!nb) { snprintf(a->err, sizeof a->err, "%s arena: out of host memory", a->role); return NULL; }
        a->blocks = nb;
        size_t cap = need > a->min_block ? need : a->min_block;
        char e[200];
        void *base;
        if (imb_mem_alloc(a->device, &base, cap, e, sizeof e)) {
            snprintf(a->err, sizeof a->err, "%s arena: %s", a->role, e);
            return NULL;
        }
        a->blocks[a->nblocks++] = (imb_arena_block){ base, cap, 0 };
    }
    imb_arena_block *b = &a->blocks[a->cur];
    char *p = b->base + b->used;
    b->used += need;
    a->in_use += need;
    if (a->in_use > a->peak) a->peak = a->in_use;
    if (a->debug) {
        /* poison the payload; the guard runs from the first whole word after it to the
         * end of the slot, so it covers the alignment padding too */
        size_t gs = (bytes + 3) & ~(size_t)3;
        if (!a->quiet) {
            imb_mem_fill32(a->device, p, IMB_POISON, gs / 4);
            imb_mem_fill32(a->device, p + gs, IMB_CANARY, (need - gs) / 4);
        }
        if (a->nguards == a->capguards) {
            int nc = a->capguards ? 2 * a->capguards : 256;
            void **ng = realloc(a->guards, sizeof *ng * (size_t)nc);
            if (!ng) { snprintf(a->err, sizeof a->err, "%s arena: out of host memory", a->role); return NULL; }
            a->guards = ng; a->capguards = nc;
        }
        a->guards[a->nguards++] = p + gs;
        a->guards[a->nguards++] = p + need;   /* end of the guard */
    }
    return p;
}

void imb_arena_reset(imb_arena *a) {
    for (int i = 0; i < a->nblocks; i++) a->blocks[i].used = 0;
    a->cur = 0;
    a->in_use = 0;
    a->nguards = 0;
}

int imb_arena_check_guards(const imb_arena *a) {
    for (int i = 0; i < a->nguards; i += 2) {
        char *g = a->guards[i], *end = a->guards[i + 1];
        size_t n = (size_t)(end - g);
        uint32_t buf[256 + IMB_ARENA_ALIGN];
        size_t nw = n / 4;
        uint32_t *w = buf;
        if (nw > sizeof buf / 4) nw = sizeof buf / 4;
        imb_mem_copy(IMB_CPU, w, a->device, g, nw * 4);
        for (size_t k = 0; k < nw; k++)
            if (w[k] != IMB_CANARY) return i / 2;
    }
    return -1;
}
