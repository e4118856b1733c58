/* flatbuf.h — a small, bounds-checked FlatBuffers reader (private to
 * src/engine), enough to walk a TFLite model without generated code.
 *
 * Debian has no FlatBuffers C runtime, and generated readers trust their
 * input. Every accessor here checks that what it reads lies inside the
 * buffer, and reports a malformed buffer as an error instead of reading past
 * it. Multi-byte values are read with memcpy (no unaligned loads).
 *
 * Vocabulary: a *table* is a position in the buffer whose first 4 bytes are
 * a signed offset back to its vtable; field i of a table is present when its
 * vtable entry i is non-zero. A *vector* is a uint32 count followed by
 * elements; vectors of tables/strings hold uoffsets to them. */
#ifndef OSPREY_ENGINE_FLATBUF_H
#define OSPREY_ENGINE_FLATBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct osp_fb_s {
    const uint8_t *buf;
    size_t len;
    bool bad; /* set by any out-of-bounds access; check at the end */
} osp_fb_t;

typedef struct osp_fb_table_s {
    uint32_t pos;    /* table start; 0 = absent */
    uint32_t vt;     /* vtable position */
    uint16_t vt_len; /* vtable size in bytes */
} osp_fb_table_t;

typedef struct osp_fb_vec_s {
    uint32_t pos;   /* first element; 0 = absent */
    uint32_t count;
} osp_fb_vec_t;

/* The root table. Returns false (and sets fb->bad) if malformed. */
bool osp_fb_root(osp_fb_t *fb, osp_fb_table_t *out);
/* The 4-byte file identifier at offset 4 ("TFL3"), or false if too short. */
bool osp_fb_identifier(const osp_fb_t *fb, char id[5]);

bool osp_fb_has(const osp_fb_t *fb, const osp_fb_table_t *t, int field);

/* Scalars: the default when the field is absent. */
uint8_t osp_fb_u8(osp_fb_t *fb, const osp_fb_table_t *t, int field, uint8_t def);
int8_t osp_fb_i8(osp_fb_t *fb, const osp_fb_table_t *t, int field, int8_t def);
int32_t osp_fb_i32(osp_fb_t *fb, const osp_fb_table_t *t, int field, int32_t def);
uint32_t osp_fb_u32(osp_fb_t *fb, const osp_fb_table_t *t, int field, uint32_t def);
float osp_fb_f32(osp_fb_t *fb, const osp_fb_table_t *t, int field, float def);

/* Sub-table / vector / string fields; absent → pos 0 / count 0 / NULL. */
osp_fb_table_t osp_fb_table(osp_fb_t *fb, const osp_fb_table_t *t, int field);
osp_fb_vec_t osp_fb_vector(osp_fb_t *fb, const osp_fb_table_t *t, int field,
                           size_t elem_size);
/* Returns a pointer into the buffer (not NUL-terminated for sure: use len). */
const char *osp_fb_string(osp_fb_t *fb, const osp_fb_table_t *t, int field,
                          uint32_t *len);

/* Vector elements (index checked against count). */
osp_fb_table_t osp_fb_vec_table(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i);
int32_t osp_fb_vec_i32(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i);
int64_t osp_fb_vec_i64(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i);
float osp_fb_vec_f32(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i);
/* A vector of bytes as a pointer into the buffer (count = length). */
const uint8_t *osp_fb_vec_bytes(osp_fb_t *fb, const osp_fb_vec_t *v);

#endif
