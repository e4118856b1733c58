/* flatbuf.c — bounds-checked FlatBuffers accessors (see flatbuf.h). Any
 * out-of-range read returns zero/absent and sets fb->bad, so callers can
 * walk a structure and check once at the end. */
#include "engine/import/flatbuf.h"

#include <string.h>

static bool in_bounds(osp_fb_t *fb, uint64_t pos, uint64_t n) {
    if (pos + n > fb->len || pos + n < pos) {
        fb->bad = true;
        return false;
    }
    return true;
}

static uint32_t rd_u32(osp_fb_t *fb, uint64_t pos) {
    uint32_t v = 0;
    if (in_bounds(fb, pos, 4))
        memcpy(&v, fb->buf + pos, 4);
    return v;
}

static uint16_t rd_u16(osp_fb_t *fb, uint64_t pos) {
    uint16_t v = 0;
    if (in_bounds(fb, pos, 2))
        memcpy(&v, fb->buf + pos, 2);
    return v;
}

/* Resolves a table at pos: its vtable must lie inside the buffer. */
static osp_fb_table_t table_at(osp_fb_t *fb, uint64_t pos) {
    osp_fb_table_t t = {0, 0, 0};
    if (pos == 0 || !in_bounds(fb, pos, 4))
        return t;
    int32_t soff;
    uint32_t raw = rd_u32(fb, pos);
    memcpy(&soff, &raw, 4);
    int64_t vt = (int64_t)pos - soff;
    if (vt < 0 || !in_bounds(fb, (uint64_t)vt, 4))
        return t;
    uint16_t vt_len = rd_u16(fb, (uint64_t)vt);
    if (vt_len < 4 || (vt_len & 1) || !in_bounds(fb, (uint64_t)vt, vt_len)) {
        fb->bad = true;
        return t;
    }
    t.pos = (uint32_t)pos;
    t.vt = (uint32_t)vt;
    t.vt_len = vt_len;
    return t;
}

bool osp_fb_root(osp_fb_t *fb, osp_fb_table_t *out) {
    if (fb->len < 8 || fb->len > UINT32_MAX) {
        fb->bad = true;
        return false;
    }
    *out = table_at(fb, rd_u32(fb, 0));
    return out->pos != 0 && !fb->bad;
}

bool osp_fb_identifier(const osp_fb_t *fb, char id[5]) {
    if (fb->len < 8)
        return false;
    memcpy(id, fb->buf + 4, 4);
    id[4] = '\0';
    return true;
}

/* Position of field `field` in table t, or 0 if absent. */
static uint64_t field_pos(osp_fb_t *fb, const osp_fb_table_t *t, int field) {
    if (t->pos == 0 || field < 0)
        return 0;
    uint32_t e = 4 + 2 * (uint32_t)field;
    if (e + 2 > t->vt_len)
        return 0;
    uint16_t off = rd_u16(fb, (uint64_t)t->vt + e);
    return off ? (uint64_t)t->pos + off : 0;
}

bool osp_fb_has(const osp_fb_t *fb, const osp_fb_table_t *t, int field) {
    return field_pos((osp_fb_t *)fb, t, field) != 0;
}

#define SCALAR(name, type)                                                     \
    type osp_fb_##name(osp_fb_t *fb, const osp_fb_table_t *t, int field,       \
                       type def) {                                             \
        uint64_t p = field_pos(fb, t, field);                                  \
        if (!p || !in_bounds(fb, p, sizeof(type)))                             \
            return def;                                                        \
        type v;                                                                \
        memcpy(&v, fb->buf + p, sizeof v);                                     \
        return v;                                                              \
    }
SCALAR(u8, uint8_t)
SCALAR(i8, int8_t)
SCALAR(i32, int32_t)
SCALAR(u32, uint32_t)
SCALAR(f32, float)
#undef SCALAR

/* Follows the uoffset stored at position p. */
static uint64_t deref(osp_fb_t *fb, uint64_t p) {
    if (!p)
        return 0;
    uint32_t off = rd_u32(fb, p);
    if (fb->bad || off == 0)
        return 0;
    uint64_t target = p + off;
    return in_bounds(fb, target, 4) ? target : 0;
}

osp_fb_table_t osp_fb_table(osp_fb_t *fb, const osp_fb_table_t *t, int field) {
    return table_at(fb, deref(fb, field_pos(fb, t, field)));
}

static osp_fb_vec_t vector_at(osp_fb_t *fb, uint64_t p, size_t elem_size) {
    osp_fb_vec_t v = {0, 0};
    if (!p)
        return v;
    uint32_t count = rd_u32(fb, p);
    if (fb->bad || !in_bounds(fb, p + 4, (uint64_t)count * elem_size))
        return v;
    v.pos = (uint32_t)(p + 4);
    v.count = count;
    return v;
}

osp_fb_vec_t osp_fb_vector(osp_fb_t *fb, const osp_fb_table_t *t, int field,
                           size_t elem_size) {
    return vector_at(fb, deref(fb, field_pos(fb, t, field)), elem_size);
}

const char *osp_fb_string(osp_fb_t *fb, const osp_fb_table_t *t, int field,
                          uint32_t *len) {
    osp_fb_vec_t v = vector_at(fb, deref(fb, field_pos(fb, t, field)), 1);
    *len = v.count;
    return v.pos ? (const char *)fb->buf + v.pos : NULL;
}

static bool elem_ok(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i) {
    if (!v->pos || i >= v->count) {
        fb->bad = true;
        return false;
    }
    return true;
}

osp_fb_table_t osp_fb_vec_table(osp_fb_t *fb, const osp_fb_vec_t *v,
                                uint32_t i) {
    osp_fb_table_t none = {0, 0, 0};
    if (!elem_ok(fb, v, i))
        return none;
    return table_at(fb, deref(fb, (uint64_t)v->pos + 4ull * i));
}

int32_t osp_fb_vec_i32(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i) {
    if (!elem_ok(fb, v, i))
        return 0;
    int32_t x;
    memcpy(&x, fb->buf + v->pos + 4ull * i, 4);
    return x;
}

int64_t osp_fb_vec_i64(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i) {
    if (!elem_ok(fb, v, i))
        return 0;
    int64_t x;
    memcpy(&x, fb->buf + v->pos + 8ull * i, 8);
    return x;
}

float osp_fb_vec_f32(osp_fb_t *fb, const osp_fb_vec_t *v, uint32_t i) {
    if (!elem_ok(fb, v, i))
        return 0.f;
    float x;
    memcpy(&x, fb->buf + v->pos + 4ull * i, 4);
    return x;
}

const uint8_t *osp_fb_vec_bytes(osp_fb_t *fb, const osp_fb_vec_t *v) {
    (void)fb;
    return v->pos ? fb->buf + v->pos : NULL;
}
