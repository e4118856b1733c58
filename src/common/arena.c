/* arena.c — the request arena (include/osprey/arena.h): chunks of memory
 * handed out by bumping an offset, freed together. Why: STYLE rule 7 — a
 * request's allocations live exactly as long as the request. */
#include "osprey/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Chunk header; the usable bytes follow it, starting 64-byte aligned
 * (plain malloc, which is faster than aligned_alloc, gives 16: the header
 * is padded so that data lands on a 64-byte boundary). */
typedef struct chunk_s {
    struct chunk_s *next;  /* older chunks */
    uint8_t *data;         /* 64-byte aligned, inside this block */
    size_t size;           /* usable bytes at data */
    size_t used;
    size_t total;          /* bytes of the malloc'd block */
} chunk_t;
#define CHUNK_HDR ((size_t)64 + 48) /* header + worst-case padding */
#define MAX_ALIGN ((size_t)4096)

struct osp_arena_s {
    chunk_t *cur;          /* chunk being bumped (newest normal chunk) */
    chunk_t *big;          /* chunks of single large allocations */
    chunk_t *first;        /* kept across reset (NULL until first use) */
    size_t first_bytes;    /* the first chunk's size */
    size_t next_bytes;     /* size of the next normal chunk */
    size_t used;           /* bytes handed out since create/reset */
    size_t held;           /* bytes in chunks */
};

static chunk_t *chunk_new(osp_arena_t *a, size_t size) {
    if (size > SIZE_MAX - CHUNK_HDR - MAX_ALIGN)
        return NULL;
    size_t total = CHUNK_HDR + size;
    chunk_t *c = malloc(total);
    if (!c)
        return NULL;
    uintptr_t d = ((uintptr_t)(c + 1) + 63) & ~(uintptr_t)63;
    c->next = NULL;
    c->data = (uint8_t *)d;
    c->size = total - (size_t)(c->data - (uint8_t *)c);
    c->used = 0;
    c->total = total;
    a->held += total;
    return c;
}

static uint8_t *chunk_data(chunk_t *c) { return c->data; }

osp_arena_t *osp_arena_create(size_t first_chunk_bytes) {
    osp_arena_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->first_bytes = first_chunk_bytes ? first_chunk_bytes
                                       : OSP_ARENA_DEFAULT_CHUNK_BYTES;
    a->next_bytes = a->first_bytes;
    return a;
}

/* Room for size bytes at alignment align in c? Returns the offset (the
 * address is aligned, not just the offset: data is only 64-aligned). */
static bool fits(const chunk_t *c, size_t size, size_t align, size_t *off) {
    uintptr_t at = (uintptr_t)c->data + c->used;
    uintptr_t al = (at + align - 1) & ~(uintptr_t)(align - 1);
    size_t o = c->used + (size_t)(al - at);
    if (o > c->size || size > c->size - o)
        return false;
    *off = o;
    return true;
}

void *osp_arena_alloc_aligned(osp_arena_t *a, size_t size, size_t align) {
    if (!a || !align || (align & (align - 1)) || align > MAX_ALIGN)
        return NULL;
    if (size == 0)
        size = 1; /* a unique, valid pointer */
    size_t off = 0;
    if (a->cur && fits(a->cur, size, align, &off)) {
        a->cur->used = off + size;
        a->used += size;
        return chunk_data(a->cur) + off;
    }
    if (size > SIZE_MAX / 4)
        return NULL;
    /* Large: a chunk of its own, so the current chunk keeps its room. */
    if (size + align > a->first_bytes / 4) {
        chunk_t *c = chunk_new(a, size + align);
        if (!c)
            return NULL;
        c->next = a->big;
        a->big = c;
        fits(c, size, align, &off);
        c->used = off + size;
        a->used += size;
        return chunk_data(c) + off;
    }
    /* A new normal chunk: the first one (kept across reset), then chunks
     * growing by doubling so that a large request needs few of them. */
    size_t want = a->next_bytes;
    while (want < size + align)
        want *= 2;
    chunk_t *c;
    if (!a->first) {
        if (want < a->first_bytes)
            want = a->first_bytes;
        c = chunk_new(a, want);
        if (!c)
            return NULL;
        a->first = c;
    } else {
        c = chunk_new(a, want);
        if (!c)
            return NULL;
        a->next_bytes = want * 2 < ((size_t)64 << 20) ? want * 2 : want;
    }
    c->next = a->cur;
    a->cur = c;
    fits(c, size, align, &off);
    c->used = off + size;
    a->used += size;
    return chunk_data(c) + off;
}

void *osp_arena_alloc(osp_arena_t *a, size_t size) {
    return osp_arena_alloc_aligned(a, size, OSP_ARENA_ALIGN);
}

void *osp_arena_calloc(osp_arena_t *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = osp_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *osp_arena_strndup(osp_arena_t *a, const char *s, size_t n) {
    if (n == SIZE_MAX)
        return NULL;
    char *p = osp_arena_alloc_aligned(a, n + 1, 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static void free_list(osp_arena_t *a, chunk_t *c, const chunk_t *keep) {
    while (c) {
        chunk_t *next = c->next;
        if (c != keep) {
            a->held -= c->total;
            free(c);
        }
        c = next;
    }
}

void osp_arena_reset(osp_arena_t *a) {
    if (!a)
        return;
    free_list(a, a->big, NULL);
    free_list(a, a->cur, a->first);
    a->big = NULL;
    a->cur = a->first;
    if (a->first) {
        a->first->next = NULL;
        a->first->used = 0;
    }
    a->next_bytes = a->first_bytes;
    a->used = 0;
}

void osp_arena_destroy(osp_arena_t *a) {
    if (!a)
        return;
    osp_arena_reset(a);
    free(a->first);
    free(a);
}

size_t osp_arena_used_bytes(const osp_arena_t *a) { return a ? a->used : 0; }
size_t osp_arena_held_bytes(const osp_arena_t *a) { return a ? a->held : 0; }
