/* arena.h — a bump allocator for request-scoped memory (STYLE rule 7, the
 * h2o habit): everything one request allocates — the decoded image, the
 * preprocessed tensor, scores, the response text — comes from one arena and
 * is released at once when the response has been sent, instead of a dozen
 * malloc/free pairs on the hot path and a leak whenever a cleanup path
 * forgets one.
 *
 * Memory is carved from chunks: a first chunk (its size chosen at create)
 * kept across osp_arena_reset, then growing chunks as needed; an allocation
 * larger than a quarter of the chunk size gets a chunk of its own so that it
 * does not waste the rest of the current one. Allocations are never freed
 * one by one; reset frees all but the first chunk and makes everything
 * allocated so far invalid; destroy frees everything.
 *
 * Not thread-safe: an arena belongs to one request (one thread at a time).
 * Ownership: osp_arena_create's caller destroys the arena; memory returned
 * by the alloc functions belongs to the arena. */
#ifndef OSPREY_ARENA_H
#define OSPREY_ARENA_H

#include <stddef.h>

typedef struct osp_arena_s osp_arena_t;

#define OSP_ARENA_DEFAULT_CHUNK_BYTES ((size_t)64 << 10) /* 64 KiB */
#define OSP_ARENA_ALIGN 16 /* default alignment of every allocation, bytes */

/* A new arena whose first chunk holds first_chunk_bytes (0 = the default);
 * the chunk itself is allocated on first use. NULL when out of memory. */
osp_arena_t *osp_arena_create(size_t first_chunk_bytes);
/* size bytes aligned to OSP_ARENA_ALIGN (size 0 gives a valid, unique
 * pointer); NULL when out of memory or on size overflow. Uninitialised. */
void *osp_arena_alloc(osp_arena_t *a, size_t size);
/* Same with an explicit alignment (a power of two, at most 4096). */
void *osp_arena_alloc_aligned(osp_arena_t *a, size_t size, size_t align);
/* n * size zeroed bytes; NULL on overflow or out of memory. */
void *osp_arena_calloc(osp_arena_t *a, size_t n, size_t size);
/* A copy of s[0..n) plus a NUL. */
char *osp_arena_strndup(osp_arena_t *a, const char *s, size_t n);
/* Makes every allocation invalid, frees all chunks but the first. */
void osp_arena_reset(osp_arena_t *a);
/* Frees everything; NULL is fine. */
void osp_arena_destroy(osp_arena_t *a);
/* Bytes handed out since create/reset (alignment padding included), and
 * bytes held in chunks right now — for tests and metrics. */
size_t osp_arena_used_bytes(const osp_arena_t *a);
size_t osp_arena_held_bytes(const osp_arena_t *a);

#endif
