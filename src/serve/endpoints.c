/* endpoints.c — the worker's HTTP handlers: classify (multipart or raw
 * image), KServe V2 health / metadata / JSON infer, Prometheus metrics.
 *
 * Each handler runs on an HTTP thread (see src/http/server.c), so decoding
 * and preprocessing here proceed in parallel with inference. An inference
 * handler then never blocks: it suspends its request and submits the
 * samples to the scheduler (osp_sched_submit); the scheduler's completion
 * resumes the request, and the resume function (infer_resumed, on an HTTP
 * thread again) checks the results and formats the answer — so the HTTP
 * threads, few in epoll mode, stay free for other connections. The same
 * code runs in thread-per-connection mode, where the connection's thread
 * waits for the resume. Errors map to statuses via osp_http_status_for (bad
 * image 400, unsupported format 415, too many pixels 413, unknown model 404,
 * queue full 503 + Retry-After, deadline 504). Routing and the OpenAPI
 * document come from one table (routes[], at the end). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "osprey/image.h"
#include "osprey/ui.h"
#include "serve/serve_int.h"

/* Seconds a client should wait before retrying a 503 (queue full). */
#define SERVE_RETRY_AFTER_S "1"

/* ---- helpers ---------------------------------------------------------- */

/* Whether some version of `name` is READY (for a precise 404 message). */
static bool any_ready(osp_serve_t *s, const char *name) {
    osp__serve_model_t *sm = osp__serve_acquire(s, name, NULL);
    if (sm)
        osp__serve_release(s, sm);
    return sm != NULL;
}


/* Finds and acquires the model named by the route (NULL name = default;
 * the caller releases it). Responds 404 or 503 itself and returns NULL when
 * there is none to use. `inference`: the
 * request counts in osprey_requests_total (classify, infer). */
static osp__serve_model_t *resolve(osp_serve_t *s, osp_http_req_t *r,
                                   bool inference) {
    const char *name = osp_http_req_param(r, "model");
    const char *ver = osp_http_req_param(r, "version");
    osp__serve_model_t *sm = osp__serve_acquire(s, name, ver);
    if (!sm) {
        if (inference)
            osp_http_req_set_user(r, &s->unknown_model);
        if (!atomic_load(&s->loaded))
            osp_http_respond_error(r, 503, "model %s is not loaded yet",
                                   name ? name : "(default)");
        else if (ver && any_ready(s, name))
            osp_http_respond_error(r, 404, "model '%s' has no version '%s' "
                                   "loaded", name, ver);
        else
            osp_http_respond_error(r, 404, "unknown model '%s'",
                                   name ? name : (s->default_name
                                                      ? s->default_name
                                                      : ""));
        return NULL;
    }
    if (inference)
        osp_http_req_set_user(r, sm);
    return sm;
}

/* The request's deadline (osp_now_ns time): X-Request-Timeout-Ms or the
 * default, counted from the start of the request. 0 + a 400 response when
 * the header is malformed. */
static int deadline_of(osp_serve_t *s, osp_http_req_t *r, uint64_t *out) {
    int64_t ms = s->o.default_timeout_ms;
    const char *h = osp_http_req_header(r, "X-Request-Timeout-Ms");
    if (h) {
        char *end;
        errno = 0;
        long long v = strtoll(h, &end, 10);
        if (errno || end == h || *end || v <= 0 || v > SERVE_MAX_TIMEOUT_MS) {
            osp_http_respond_error(r, 400,
                                   "X-Request-Timeout-Ms must be an integer in "
                                   "1..%d", SERVE_MAX_TIMEOUT_MS);
            return -1;
        }
        ms = v;
    }
    if (ms <= 0) {
        *out = 0;
        return 0;
    }
    double left_s = (double)ms * 1e-3 - osp_http_req_elapsed_s(r);
    *out = osp_now_ns() + (uint64_t)(left_s > 0 ? left_s * 1e9 : 0);
    return 0;
}

/* Reserves n bytes of the memory budget (docs/adr/0049-memory-budget.md)
 * before they are allocated for r; when the budget cannot hold them,
 * answers 503 + Retry-After and returns false. */
static bool budget_reserve(osp_http_req_t *r, size_t n) {
    if (osp_http_req_reserve(r, n) == 0)
        return true;
    osp_http_respond_over_budget(r);
    return false;
}

/* Decodes + preprocesses one encoded image into out (sample_bytes); the
 * decoded pixels and the scratch come from the request's arena.
 *
 * The memory budget: the decoder checks the pixel limit against the file
 * header before it allocates the pixels, so the limit is lowered to what
 * the budget has room for (3 bytes a pixel): an image that cannot fit is
 * refused before its pixels exist (OSP_EBUSY: 503). What the decode then
 * took from the arena (pixels, scratch) is charged to the request. Two
 * requests decoding at once may both see the same room; the excess is at
 * most one image per decoding thread, and later reservations see it. */
static int decode_one(osp_serve_t *s, osp__serve_model_t *sm,
                      osp_http_req_t *r, const uint8_t *data, size_t len,
                      void *out, osp_err_t *err) {
    osp_arena_t *arena = osp_http_req_arena(r);
    osp_image_limits_t lim;
    osp_image_limits_default(&lim);
    lim.max_bytes = 0; /* the body limit already applied */
    if (s->o.max_pixels)
        lim.max_pixels = s->o.max_pixels;
    uint64_t room_px = osp_http_req_budget_room(r) / 3;
    bool capped = room_px < lim.max_pixels;
    if (capped && !(lim.max_pixels = room_px))
        return osp_err_set(err, OSP_EBUSY, "memory budget full");
    int mw, mh;
    osp_preprocess_decode_hint(sm->pp, &mw, &mh);
    size_t held = osp_arena_held_bytes(arena);
    osp_image_t img; /* in the arena: never released on its own */
    int rc = osp_image_decode_arena(data, len, &lim, mw, mh, arena, &img, err);
    if (rc == OSP_ELIMIT && capped)
        return osp_err_set(err, OSP_EBUSY, "memory budget full");
    if (rc == 0)
        rc = osp_image_preprocess_arena(&img, sm->pp, out, arena, err);
    size_t now = osp_arena_held_bytes(arena);
    osp_http_req_charge(r, now > held ? now - held : 0);
    return rc;
}

/* Floats of output per sample that a request reserves for its scores. */
static size_t score_cap(const osp__serve_model_t *sm) {
    return sm->num_classes > 0 ? (size_t)sm->num_classes : 1;
}

/* One inference request between its handler and its answer. Lives in the
 * request's arena (which lives until the answer has been sent). It holds
 * the model reference the handler acquired; infer_resumed releases it. */
typedef struct infer_ctx_s {
    osp_serve_t *s;
    osp__serve_model_t *sm;
    osp_http_req_t *r;
    osp__serve_job_t job;     /* on a decode thread: parse, decode, submit */
    /* classify_prepare or v2_prepare: 1 when submitted (infer_done
     * resumes), 0 when answered or refused (the job resumes) */
    int (*prepare)(struct infer_ctx_s *c);
    bool prepared;            /* no longer counted in sm->preparing */
    int n;                    /* samples */
    osp_sched_result_t *res;  /* n results; scores in the arena */
    int submit_rc;            /* osp_sched_submit's answer */
    /* Shedding (shed.c) measures from admission: waiting for a decode
     * thread and decoding are waits too, and a decode-bound worker's
     * backlog is in the decode pool, not in the queue. */
    uint64_t admit_ns;        /* when it was admitted (osp_now_ns) */
    uint64_t submit_ns;       /* when it entered the queue */
    int ahead_at_admit;       /* images queued or being prepared ahead */
    osp_err_t err;            /* its message */
    bool checked;             /* results checked (debug delay pending) */
    osp__serve_tnode_t tnode;      /* --debug-delay-ms timer entry */
    double queue_ms, infer_ms;
    /* the answer's formatter, on success */
    void (*format)(struct infer_ctx_s *c);
    /* classify */
    int top_k;
    double decode_ms;
    /* V2 infer */
    bool binary;
    const char *oname, *id;   /* id: the request's "id" (arena) or NULL */
} infer_ctx_t;

/* Scheduler completion (an instance or deadline thread): hand the request
 * back to an HTTP thread. */
static void infer_done(void *ud) {
    infer_ctx_t *c = ud;
    osp_http_req_resume(c->r);
}

/* Logs a change of a model's shedding state (+1 started, -1 stopped). */
static void shed_log(osp_serve_t *s, osp__serve_model_t *sm, int change,
                     double limit) {
    if (!change)
        return;
    bool on;
    double delay_s, rate;
    uint64_t w;
    osp__serve_shed_read(&sm->shed, -1, 0, &on, &delay_s, &rate, &w);
    osp_series_set(sm->shedding, on);
    json_t *f = json_pack("{s:s,s:f,s:f,s:I}", "model", sm->name,
                          "queue_delay_ms", delay_s * 1e3,
                          "drain_images_per_s", rate, "target_ms",
                          (json_int_t)s->o.queue_delay_target_ms);
    if (f && limit >= 0)
        json_object_set_new(f, "admit_below_depth", json_real(limit));
    osp__serve_log(s, "warn", change > 0 ? "shedding load" :
                   "stopped shedding load", f);
}

/* Checks the scheduler's answer; on failure responds (503 + Retry-After,
 * 504, 500) and returns < 0. Records queue/infer maxima in ms. */
static int check_results(infer_ctx_t *c) {
    osp_http_req_t *r = c->r;
    osp__serve_model_t *sm = c->sm;
    int rc = c->submit_rc;
    if (rc == OSP_EBUSY) {
        osp_http_add_header(r, "Retry-After", SERVE_RETRY_AFTER_S);
        osp_http_respond_error(r, 503, "model '%s': %s", sm->name,
                               c->err.msg);
        return rc;
    }
    if (rc < 0) {
        osp_http_respond_error(r, osp_http_status_for(rc), "%s", c->err.msg);
        return rc;
    }
    c->queue_ms = c->infer_ms = 0;
    int bad = 0;
    uint64_t now = osp_now_ns();
    for (int i = 0; i < c->n; i++) {
        osp_series_observe(sm->h_queue, c->res[i].queue_s);
        if (c->res[i].status == 0)
            shed_log(c->s, sm, osp__serve_shed_observe(
                                   &sm->shed, c->res[i].queue_s +
                                       (double)(c->submit_ns - c->admit_ns) *
                                           1e-9,
                                   c->res[i].infer_s, c->ahead_at_admit + i,
                                   now), -1);
        if (c->res[i].status < 0 && !bad)
            bad = c->res[i].status;
        c->queue_ms = OSP_MAX(c->queue_ms, c->res[i].queue_s * 1e3);
        c->infer_ms = OSP_MAX(c->infer_ms, c->res[i].infer_s * 1e3);
    }
    if (bad) {
        if (bad == OSP_ETIMEDOUT)
            osp_http_respond_error(r, 504,
                                   "deadline exceeded while queued for model "
                                   "'%s'", sm->name);
        else
            osp_http_respond_error(r, osp_http_status_for(bad),
                                   "inference failed: %s", osp_strerror(bad));
        return bad;
    }
    return 0;
}

/* Runs on an HTTP thread once the scheduler (or the debug-delay timer)
 * resumed the request: answers it and releases the model. */
static void infer_resumed(osp_http_req_t *r, void *ud) {
    infer_ctx_t *c = ud;
    if (!c->checked) {
        c->checked = true;
        /* A request answered while it was parsed or decoded (a 4xx, a
         * full memory budget) never reached the scheduler. */
        if (!osp_http_req_status(r) && check_results(c) == 0 &&
            c->s->o.debug_delay_ms > 0 && c->s->timer) {
            /* --debug-delay-ms (dispatcher tests: slow workers on demand):
             * delays only this answer, without holding an HTTP thread —
             * the request stays suspended (and in flight, so drain waits
             * for it) until the timer resumes it. */
            osp_http_req_suspend(r, infer_resumed, c);
            osp__serve_timer_add(c->s->timer, &c->tnode,
                                 osp_now_ns() + (uint64_t)c->s->o.debug_delay_ms *
                                                    1000000ull, r);
            return;
        }
    }
    if (!osp_http_req_status(r))
        c->format(c);
    osp__serve_release(c->s, c->sm);
}

/* The request leaves the admitted-but-not-queued count (once). */
static void done_preparing(infer_ctx_t *c) {
    if (!c->prepared) {
        c->prepared = true;
        atomic_fetch_sub(&c->sm->preparing, 1);
    }
}

/* On a decode thread: submits the c->n preprocessed samples at buf.
 * Returns 1 when submitted — infer_done resumes the request, and c may be
 * gone as soon as this returns — or 0 when refused (c->submit_rc; the
 * caller resumes, check_results answers). */
static int start_infer(infer_ctx_t *c, uint8_t *buf, uint64_t deadline) {
    osp__serve_model_t *sm = c->sm;
    osp_arena_t *A = osp_http_req_arena(c->r);
    const void *inputs[SERVE_MAX_IMAGES];
    for (int i = 0; i < c->n; i++)
        inputs[i] = buf + (size_t)i * sm->sample_bytes;
    c->res = osp_arena_alloc(A, (size_t)c->n * sizeof *c->res);
    float *scores = osp_arena_alloc(A, sizeof(float) * (size_t)c->n *
                                           score_cap(sm));
    done_preparing(c); /* the queue counts it from here on */
    c->submit_ns = osp_now_ns();
    if (!scores || !c->res) {
        c->submit_rc = osp_err_set(&c->err, OSP_ENOMEM, "out of memory");
        return 0;
    }
    /* Accepted, the batch may run, infer_done resume the request and an
     * event loop answer and free it (c with it) before the submit returns
     * here: c is written only when it was refused. */
    int rc = osp_sched_submit(sm->sched, inputs, c->n, deadline, c->res,
                              scores, score_cap(sm), infer_done, c, &c->err);
    if (rc < 0) {
        c->submit_rc = rc;
        return 0;
    }
    return 1;
}

/* A context for an inference request, in its arena; NULL after a 500. */
static infer_ctx_t *ctx_new(osp_serve_t *s, osp__serve_model_t *sm,
                            osp_http_req_t *r) {
    infer_ctx_t *c = osp_arena_alloc(osp_http_req_arena(r), sizeof *c);
    if (!c) {
        osp_http_respond_error(r, 500, "out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->s = s;
    c->sm = sm;
    c->r = r;
    return c;
}

static int parse_top_k(osp_http_req_t *r, int num_classes, int *out) {
    const char *q = osp_http_req_query(r, "top_k");
    *out = 5;
    if (q) {
        char *end;
        errno = 0;
        long v = strtol(q, &end, 10);
        if (errno || end == q || *end || v < 1 || v > SERVE_MAX_TOP_K) {
            osp_http_respond_error(r, 400, "top_k must be an integer in 1..%d",
                                   SERVE_MAX_TOP_K);
            return -1;
        }
        *out = (int)v;
    }
    if (num_classes > 0 && *out > num_classes)
        *out = num_classes;
    return 0;
}

/* ---- classify ------------------------------------------------------------ */

static bool is_image_type(const char *ct) {
    if (!ct || !*ct)
        return true; /* sniffed from the bytes */
    static const char *ok[] = {"image/", "application/octet-stream"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(ok); i++)
        if (!strncasecmp(ct, ok[i], strlen(ok[i])))
            return true;
    return false;
}

/* The classify answer (an HTTP thread, after the batch ran). */
static void classify_format(infer_ctx_t *c) {
    osp_http_req_t *r = c->r;
    osp__serve_model_t *sm = c->sm;
    osp_arena_t *A = osp_http_req_arena(r);
    int n = c->n, top_k = c->top_k;
    osp_sched_result_t *res = c->res;
    int *idx = osp_arena_alloc(A, sizeof(int) * (size_t)top_k);
    float *sc = osp_arena_alloc(A, sizeof(float) * (size_t)top_k);
    if (!idx || !sc) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    /* {"model": .., "version": .., "results": [{"predictions": [{"index":
     * .., "label": .., "score": ..}, ...]}, ...], "timings_ms": {..}} */
    osp__serve_jw_t w;
    osp__serve_jw_init(&w, A, 256 + (size_t)n * (size_t)top_k * 96);
    osp__serve_jw_lit(&w, "{\"model\":");
    osp__serve_jw_str(&w, sm->name);
    osp__serve_jw_lit(&w, ",\"version\":");
    osp__serve_jw_str(&w, sm->version);
    osp__serve_jw_lit(&w, ",\"results\":[");
    for (int i = 0; i < n; i++) {
        if (osp_model_needs_softmax(sm->m))
            osp_softmax(res[i].scores, res[i].scores, res[i].n_scores);
        int k = osp_topk(res[i].scores, res[i].n_scores, top_k, idx, sc);
        osp__serve_jw_lit(&w, i ? ",{\"predictions\":[" : "{\"predictions\":[");
        for (int j = 0; j < k; j++) {
            const char *label = osp_model_label(sm->m, idx[j]);
            osp__serve_jw_lit(&w, j ? ",{\"index\":" : "{\"index\":");
            osp__serve_jw_int(&w, idx[j]);
            osp__serve_jw_lit(&w, ",\"label\":");
            osp__serve_jw_str(&w, label ? label : "");
            osp__serve_jw_lit(&w, ",\"score\":");
            osp__serve_jw_num(&w, sc[j], 6);
            osp__serve_jw_lit(&w, "}");
        }
        osp__serve_jw_lit(&w, "]}");
    }
    osp__serve_jw_lit(&w, "],\"timings_ms\":{\"decode\":");
    osp__serve_jw_num(&w, c->decode_ms, 4);
    osp__serve_jw_lit(&w, ",\"queue\":");
    osp__serve_jw_num(&w, c->queue_ms, 4);
    osp__serve_jw_lit(&w, ",\"infer\":");
    osp__serve_jw_num(&w, c->infer_ms, 4);
    osp__serve_jw_lit(&w, "}}\n");
    if (w.oom) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    osp_http_respond_arena(r, 200, "application/json", w.buf, w.len);
}


/* POST .../classify on a decode thread (on_infer): parse, decode,
 * submit. Answers from here are held until the request resumes. */
static int classify_prepare(infer_ctx_t *c) {
    osp_http_req_t *r = c->r;
    osp_serve_t *s = c->s;
    osp__serve_model_t *sm = c->sm;
    int top_k;
    uint64_t deadline;
    if (parse_top_k(r, sm->num_classes, &top_k) < 0 ||
        deadline_of(s, r, &deadline) < 0)
        return 0;
    /* Everything below lives in the request's arena (STYLE rule 7): no
     * cleanup path, freed after the response is sent. */
    osp_arena_t *A = osp_http_req_arena(r);
    size_t len;
    const uint8_t *body = osp_http_req_body(r, &len);
    const char *ct = osp_http_req_header(r, "Content-Type");
    const uint8_t *img[SERVE_MAX_IMAGES];
    size_t img_len[SERVE_MAX_IMAGES];
    int n = 0;
    osp_err_t err = {0};
    if (ct && !strncasecmp(ct, "multipart/", 10)) {
        char boundary[OSP_MULTIPART_MAX_BOUNDARY + 1];
        if (osp_multipart_boundary(ct, boundary, sizeof boundary) < 0) {
            osp_http_respond_error(r, 400,
                                   "multipart body needs multipart/form-data "
                                   "with a boundary");
            return 0;
        }
        osp_multipart_part_t *parts =
            osp_arena_alloc(A, SERVE_MAX_IMAGES * sizeof *parts);
        if (!parts) {
            osp_http_respond_error(r, 500, "out of memory");
            return 0;
        }
        int np = 0;
        int rc = osp_multipart_parse(body, len, boundary, parts,
                                     SERVE_MAX_IMAGES, &np, &err);
        if (rc < 0) {
            osp_http_respond_error(r, rc == OSP_ELIMIT ? 413 : 400, "%s",
                                   err.msg);
            return 0;
        }
        for (int i = 0; i < np; i++)
            if (!strcmp(parts[i].name, "file")) {
                img[n] = parts[i].data;
                img_len[n] = parts[i].len;
                n++;
            }
        if (n == 0) {
            osp_http_respond_error(r, 400,
                                   "multipart body has no 'file' part");
            return 0;
        }
    } else if (is_image_type(ct)) {
        if (len == 0) {
            osp_http_respond_error(r, 400, "empty body: send an image");
            return 0;
        }
        img[0] = body;
        img_len[0] = len;
        n = 1;
    } else {
        osp_http_respond_error(r, 415,
                               "unsupported Content-Type '%s': send "
                               "multipart/form-data or an image", ct);
        return 0;
    }
    if (!budget_reserve(r, sm->sample_bytes * (size_t)n))
        return 0;
    uint8_t *buf = osp_arena_alloc_aligned(A, sm->sample_bytes * (size_t)n, 64);
    if (!buf) {
        osp_http_respond_error(r, 500, "out of memory");
        return 0;
    }
    uint64_t t0 = osp_now_ns();
    /* The batcher may wait for these while they decode (sched.h). */
    osp_sched_expect(sm->sched, n);
    for (int i = 0; i < n; i++) {
        uint64_t ti = osp_now_ns();
        int rc = decode_one(s, sm, r, img[i], img_len[i],
                            buf + (size_t)i * sm->sample_bytes, &err);
        if (rc < 0) {
            osp_sched_expect(sm->sched, -n);
            if (rc == OSP_EBUSY)
                osp_http_respond_over_budget(r);
            else if (n > 1)
                osp_http_respond_error(r, osp_http_status_for(rc),
                                       "image %d: %s", i, err.msg);
            else
                osp_http_respond_error(r, osp_http_status_for(rc), "%s",
                                       err.msg);
            return 0;
        }
        osp_series_observe(sm->h_decode, (double)(osp_now_ns() - ti) * 1e-9);
    }
    double decode_ms = (double)(osp_now_ns() - t0) * 1e-6;
    osp_sched_expect(sm->sched, -n); /* submitted next, or answered 500 */
    c->n = n;
    c->format = classify_format;
    c->top_k = top_k;
    c->decode_ms = decode_ms;
    return start_infer(c, buf, deadline);
}

/* ---- KServe V2 ------------------------------------------------------------ */

static const char *v2_datatype(osp_dtype_t dt) {
    switch (dt) {
    case OSP_DT_F32: return "FP32";
    case OSP_DT_BF16: return "BF16";
    case OSP_DT_F16: return "FP16";
    case OSP_DT_U8: return "UINT8";
    case OSP_DT_S8: return "INT8";
    case OSP_DT_S32: return "INT32";
    case OSP_DT_S64: return "INT64";
    case OSP_DT_BOOL: return "BOOL";
    default: return "UNKNOWN";
    }
}

/* V2 tensor metadata. An output whose shape the model file does not declare
 * is described as [-1, classes], the shape every run produces. */
static json_t *tensor_meta(const osp_tensor_t *t, const char *fallback,
                           int classes) {
    json_t *shape = json_array();
    for (int i = 0; i < t->rank; i++)
        json_array_append_new(shape, json_integer(t->dims[i]));
    if (t->rank <= 0 && classes > 0) {
        json_array_append_new(shape, json_integer(-1));
        json_array_append_new(shape, json_integer(classes));
    }
    return json_pack("{s:s,s:s,s:o}", "name", t->name ? t->name : fallback,
                     "datatype", v2_datatype(t->dtype), "shape", shape);
}

static void h_live(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_http_respond_json(r, 200, json_pack("{s:b}", "live", 1));
}

static void h_ready(osp_http_req_t *r, void *ud) {
    osp_serve_t *s = ud;
    int ready = atomic_load(&s->ready);
    osp_http_respond_json(r, ready ? 200 : 503,
                          json_pack("{s:b}", "ready", ready));
}

static void h_server_meta(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_http_respond_json(r, 200,
                          json_pack("{s:s,s:s,s:[s,s]}", "name", "osprey",
                                    "version", OSP_VERSION, "extensions",
                                    "binary_tensor_data", "model_repository"));
}

static void model_meta(osp_http_req_t *r, osp_serve_t *s,
                       osp__serve_model_t *sm) {
    const osp_engine_t *e = sm->engines[0];
    json_t *ins = json_array(), *outs = json_array();
    for (int i = 0; i < osp_engine_num_inputs(e); i++)
        json_array_append_new(ins, tensor_meta(osp_engine_input(e, i), "input", 0));
    for (int i = 0; i < osp_engine_num_outputs(e); i++)
        json_array_append_new(outs,
                              tensor_meta(osp_engine_output(e, i), "output",
                                          i == 0 ? sm->num_classes : 0));
    /* Every READY version of this name, ascending. */
    json_t *vers = json_array();
    long long prev = -1;
    pthread_mutex_lock(&s->models_mu);
    for (;;) {
        const osp__serve_model_t *next = NULL;
        for (int i = 0; i < s->n_models; i++) {
            const osp__serve_model_t *m = s->models[i];
            if (!strcmp(m->name, sm->name) && m->vnum > prev &&
                atomic_load(&m->state) == SERVE_READY &&
                (!next || m->vnum < next->vnum))
                next = m;
        }
        if (!next)
            break;
        json_array_append_new(vers, json_string(next->version));
        prev = next->vnum;
    }
    pthread_mutex_unlock(&s->models_mu);
    osp_http_respond_json(
        r, 200,
        json_pack("{s:s,s:o,s:s,s:o,s:o}", "name", sm->name, "versions",
                  vers, "platform", "osprey", "inputs", ins, "outputs",
                  outs));
}

static void model_ready(osp_http_req_t *r, osp_serve_t *s,
                        osp__serve_model_t *sm) {
    int ready = atomic_load(&sm->state) == SERVE_READY &&
                atomic_load(&s->ready);
    osp_http_respond_json(r, ready ? 200 : 503,
                          json_pack("{s:s,s:s,s:b}", "name", sm->name,
                                    "version", sm->version, "ready", ready));
}

/* Flattens nested JSON number arrays into out[0..cap); returns the count or
 * -1 on a non-number / overflow. */
static long flatten(json_t *j, float *out, long cap, long n, bool u8,
                    int depth) {
    if (depth > OSP_MAX_RANK)
        return -1;
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            n = flatten(v, out, cap, n, u8, depth + 1);
            if (n < 0)
                return -1;
        }
        return n;
    }
    if (!json_is_number(j) || n >= cap)
        return -1;
    double d = json_number_value(j);
    if (u8 && (d < 0 || d > 255 || d != floor(d)))
        return -1;
    out[n] = (float)d;
    return n + 1;
}

/* Decodes base64 (osp_base64_decode) into the arena; NULL when it is not
 * base64 (or out of memory). */
static uint8_t *b64decode(osp_arena_t *a, const char *s, size_t len,
                          size_t *out_len) {
    uint8_t *o = osp_arena_alloc(a, len / 4 * 3 + 4);
    long n = o ? osp_base64_decode(s, len, o) : -1;
    if (n < 0)
        return NULL;
    *out_len = (size_t)n;
    return o;
}

/* Decodes + preprocesses one encoded image of a BYTES input into slot i. */
static int infer_image(osp_serve_t *s, osp__serve_model_t *sm,
                       osp_http_req_t *r, const uint8_t *bytes, size_t len,
                       uint8_t *buf, int i) {
    osp_err_t err = {0};
    uint64_t t0 = osp_now_ns();
    int rc = decode_one(s, sm, r, bytes, len,
                        buf + (size_t)i * sm->sample_bytes, &err);
    if (rc == OSP_EBUSY)
        osp_http_respond_over_budget(r);
    else if (rc < 0)
        osp_http_respond_error(r, osp_http_status_for(rc), "image %d: %s", i,
                               err.msg);
    if (rc < 0)
        return rc;
    osp_series_observe(sm->h_decode, (double)(osp_now_ns() - t0) * 1e-9);
    return 0;
}

/* True when the client asked for binary output (binary tensor extension):
 * request parameter binary_data_output, or binary_data on a requested
 * output. */
static bool wants_binary_output(json_t *req) {
    if (json_is_true(json_object_get(json_object_get(req, "parameters"),
                                     "binary_data_output")))
        return true;
    json_t *outs = json_object_get(req, "outputs");
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
        if (json_is_true(json_object_get(json_object_get(o, "parameters"),
                                         "binary_data")))
            return true;
    }
    return false;
}

/* The V2 infer answer (an HTTP thread, after the batch ran). */
static void infer_format(infer_ctx_t *ic) {
    osp_http_req_t *r = ic->r;
    osp__serve_model_t *sm = ic->sm;
    osp_arena_t *A = osp_http_req_arena(r);
    int n = ic->n;
    osp_sched_result_t *res = ic->res;
    int c = res[0].n_scores;
    bool binary = ic->binary;
    size_t out_bytes = (size_t)n * (size_t)c * sizeof(float);
    /* {"model_name", "model_version", "id"?, "outputs": [{"name",
     * "datatype": "FP32", "shape": [n, c], "data" | "parameters"}]} */
    osp__serve_jw_t w;
    osp__serve_jw_init(&w, A, binary ? 512 : 512 + (size_t)n * (size_t)c * 16);
    osp__serve_jw_lit(&w, "{\"model_name\":");
    osp__serve_jw_str(&w, sm->name);
    osp__serve_jw_lit(&w, ",\"model_version\":");
    osp__serve_jw_str(&w, sm->version);
    if (ic->id) {
        osp__serve_jw_lit(&w, ",\"id\":");
        osp__serve_jw_str(&w, ic->id);
    }
    osp__serve_jw_lit(&w, ",\"outputs\":[{\"name\":");
    osp__serve_jw_str(&w, ic->oname);
    osp__serve_jw_lit(&w, ",\"datatype\":\"FP32\",\"shape\":[");
    osp__serve_jw_int(&w, n);
    osp__serve_jw_lit(&w, ",");
    osp__serve_jw_int(&w, c);
    if (binary) {
        osp__serve_jw_lit(&w, "],\"parameters\":{\"binary_data_size\":");
        osp__serve_jw_int(&w, (long long)out_bytes);
        osp__serve_jw_lit(&w, "}}]}");
    } else {
        osp__serve_jw_lit(&w, "],\"data\":[");
        for (int i = 0; i < n; i++)
            for (int k = 0; k < res[i].n_scores; k++) {
                if (i || k)
                    osp__serve_jw_raw(&w, ",", 1);
                /* 9 significant digits: every float round-trips. */
                osp__serve_jw_num(&w, res[i].scores[k], 9);
            }
        osp__serve_jw_lit(&w, "]}]}\n");
    }
    if (w.oom) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    if (!binary) {
        osp_http_respond_arena(r, 200, "application/json", w.buf, w.len);
        return;
    }
    uint8_t *ob = osp_arena_alloc(A, w.len + out_bytes);
    if (!ob) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    memcpy(ob, w.buf, w.len);
    for (int i = 0; i < n; i++)
        memcpy(ob + w.len + (size_t)i * (size_t)c * sizeof(float),
               res[i].scores, (size_t)c * sizeof(float));
    char num[32];
    snprintf(num, sizeof num, "%zu", w.len);
    osp_http_add_header(r, "Inference-Header-Content-Length", num);
    osp_http_respond_arena(r, 200, "application/octet-stream", ob,
                           w.len + out_bytes);
}

/* ---- V2 infer: parse → decode → submit ----------------------------------- */

/* A V2 infer request, parsed and checked against the model (v2_parse);
 * pointers into json, which the handler releases. */
typedef struct v2_req_s {
    json_t *json;         /* the JSON inference header */
    const uint8_t *bin;   /* binary tensor data after the header */
    size_t bin_len;
    const char *dt;       /* the input's datatype */
    json_t *shape, *data; /* the input's shape and JSON data (or NULL) */
    json_t *bsize;        /* parameters.binary_data_size, or NULL */
    const char *oname;    /* the model's output 0 */
    int n;                /* batch */
} v2_req_t;

/* The JSON header's length: Inference-Header-Content-Length, else the whole
 * body. Responds 400 and returns < 0 when the header is not a length. */
static int v2_header_len(osp_http_req_t *r, size_t len, size_t *hlen) {
    const char *ihcl =
        osp_http_req_header(r, "Inference-Header-Content-Length");
    *hlen = len;
    if (!ihcl)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(ihcl, &end, 10);
    if (errno || end == ihcl || *end || v > len) {
        osp_http_respond_error(r, 400,
                               "Inference-Header-Content-Length %s is not "
                               "a length within the %zu-byte body", ihcl,
                               len);
        return OSP_EFORMAT;
    }
    *hlen = (size_t)v;
    return 0;
}

/* Every requested output must be the model's output 0; responds 400. */
static int v2_check_outputs(osp_http_req_t *r, json_t *out_req,
                            const char *oname) {
    if (!out_req)
        return 0;
    if (!json_is_array(out_req)) {
        osp_http_respond_error(r, 400, "'outputs' must be an array");
        return OSP_EFORMAT;
    }
    size_t i;
    json_t *o;
    json_array_foreach(out_req, i, o) {
        const char *nm = json_string_value(json_object_get(o, "name"));
        if (!nm || strcmp(nm, oname)) {
            osp_http_respond_error(r, 400,
                                   "unknown output '%s' (the model's "
                                   "output is '%s')", nm ? nm : "", oname);
            return OSP_EFORMAT;
        }
    }
    return 0;
}

/* Parses the body into q (q->json set whenever JSON was parsed, also on
 * error); responds 400 and returns < 0 on anything malformed. */
static int v2_parse(osp_http_req_t *r, osp__serve_model_t *sm, v2_req_t *q) {
    size_t len, hlen;
    const uint8_t *body = osp_http_req_body(r, &len);
    if (v2_header_len(r, len, &hlen) < 0)
        return OSP_EFORMAT;
    q->bin = body + hlen;
    q->bin_len = len - hlen;
    json_error_t je;
    q->json = json_loadb((const char *)body, hlen, 0, &je);
    if (!q->json || !json_is_object(q->json)) {
        osp_http_respond_error(r, 400, "invalid JSON at line %d column %d: %s",
                               je.line, je.column,
                               q->json ? "top level must be an object"
                                       : je.text);
        return OSP_EFORMAT;
    }
    json_t *inputs = json_object_get(q->json, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1) {
        osp_http_respond_error(r, 400,
                               "'inputs' must be an array with one tensor");
        return OSP_EFORMAT;
    }
    json_t *in = json_array_get(inputs, 0);
    q->dt = json_string_value(json_object_get(in, "datatype"));
    q->shape = json_object_get(in, "shape");
    q->data = json_object_get(in, "data");
    q->bsize = json_object_get(json_object_get(in, "parameters"),
                               "binary_data_size");
    if (!q->dt || !json_is_array(q->shape) || json_array_size(q->shape) < 1 ||
        (!q->data && !q->bsize)) {
        osp_http_respond_error(r, 400, "input needs 'datatype', 'shape' and "
                               "'data' (or parameters.binary_data_size)");
        return OSP_EFORMAT;
    }
    if (q->bsize &&
        (!json_is_integer(q->bsize) || json_integer_value(q->bsize) < 0 ||
         (size_t)json_integer_value(q->bsize) != q->bin_len)) {
        osp_http_respond_error(r, 400,
                               "binary_data_size must equal the %zu bytes "
                               "after the inference header", q->bin_len);
        return OSP_EFORMAT;
    }
    const osp_tensor_t *od = osp_engine_output(sm->engines[0], 0);
    q->oname = od->name ? od->name : "output";
    if (v2_check_outputs(r, json_object_get(q->json, "outputs"), q->oname) <
        0)
        return OSP_EFORMAT;
    json_t *b = json_array_get(q->shape, 0);
    if (!json_is_integer(b) || json_integer_value(b) < 1 ||
        json_integer_value(b) > SERVE_MAX_IMAGES) {
        osp_http_respond_error(r, 400, "shape[0] (batch) must be 1..%d",
                               SERVE_MAX_IMAGES);
        return OSP_EFORMAT;
    }
    q->n = (int)json_integer_value(b);
    return 0;
}

/* BYTES: encoded images, one per batch element — length-prefixed elements
 * in the binary part, or base64 strings in JSON — decoded into buf. */
static int v2_decode_images(osp_serve_t *s, osp__serve_model_t *sm,
                            osp_http_req_t *r, const v2_req_t *q,
                            uint8_t *buf) {
    if (q->bsize) {
        size_t off = 0;
        for (int i = 0; i < q->n; i++) {
            uint32_t el;
            if (q->bin_len - off < 4 ||
                (memcpy(&el, q->bin + off, 4), q->bin_len - off - 4 < el)) {
                osp_http_respond_error(r, 400,
                                       "BYTES element %d overruns the "
                                       "binary data", i);
                return OSP_EFORMAT;
            }
            int rc = infer_image(s, sm, r, q->bin + off + 4, el, buf, i);
            if (rc < 0)
                return rc;
            off += 4 + (size_t)el;
        }
        if (off != q->bin_len) {
            osp_http_respond_error(r, 400, "%zu bytes after the last "
                                   "BYTES element", q->bin_len - off);
            return OSP_EFORMAT;
        }
        return 0;
    }
    if (!json_is_array(q->data) || json_array_size(q->data) != (size_t)q->n) {
        osp_http_respond_error(r, 400,
                               "BYTES input: 'data' must hold %d "
                               "base64-encoded images", q->n);
        return OSP_EFORMAT;
    }
    for (int i = 0; i < q->n; i++) {
        json_t *v = json_array_get(q->data, (size_t)i);
        size_t bl = 0;
        if (json_is_string(v) &&
            !budget_reserve(r, json_string_length(v) / 4 * 3 + 4))
            return OSP_EBUSY;
        uint8_t *bytes = json_is_string(v)
                             ? b64decode(osp_http_req_arena(r),
                                         json_string_value(v),
                                         json_string_length(v), &bl)
                             : NULL;
        if (!bytes) {
            osp_http_respond_error(r, 400,
                                   "BYTES element %d is not a base64 "
                                   "string", i);
            return OSP_EFORMAT;
        }
        int rc = infer_image(s, sm, r, bytes, bl, buf, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The model's own tensor (FP32 or UINT8), checked against its declared
 * input and copied into buf: raw little-endian bytes from the binary part
 * (this host is little-endian, like every platform oneDNN supports) or
 * JSON numbers. */
static int v2_copy_tensor(osp__serve_model_t *sm, osp_http_req_t *r,
                          const v2_req_t *q, uint8_t *buf) {
    const osp_tensor_t *decl = osp_engine_input(sm->engines[0], 0);
    if (strcmp(q->dt, v2_datatype(decl->dtype))) {
        osp_http_respond_error(r, 400,
                               "datatype %s does not match the model input "
                               "(%s) — or send BYTES (an encoded image)",
                               q->dt, v2_datatype(decl->dtype));
        return OSP_EFORMAT;
    }
    if ((int)json_array_size(q->shape) != decl->rank) {
        osp_http_respond_error(r, 400, "shape must have rank %d", decl->rank);
        return OSP_EFORMAT;
    }
    for (int k = 1; k < decl->rank; k++)
        if (json_integer_value(json_array_get(q->shape, (size_t)k)) !=
            decl->dims[k]) {
            osp_http_respond_error(r, 400, "shape[%d] must be %lld", k,
                                   (long long)decl->dims[k]);
            return OSP_EFORMAT;
        }
    size_t want = sm->sample_bytes * (size_t)q->n;
    if (q->bsize) {
        if (q->bin_len != want) {
            osp_http_respond_error(r, 400,
                                   "binary data is %zu bytes; shape needs "
                                   "%zu", q->bin_len, want);
            return OSP_EFORMAT;
        }
        memcpy(buf, q->bin, want);
        return 0;
    }
    bool u8 = !strcmp(q->dt, "UINT8");
    long cap = (long)(want / osp_dtype_size(decl->dtype));
    if (!budget_reserve(r, sizeof(float) * (size_t)cap))
        return OSP_EBUSY;
    float *vals = osp_arena_alloc(osp_http_req_arena(r),
                                  sizeof(float) * (size_t)cap);
    if (!vals) {
        osp_http_respond_error(r, 500, "out of memory");
        return OSP_ENOMEM;
    }
    if (flatten(q->data, vals, cap, 0, u8, 0) != cap) {
        osp_http_respond_error(r, 400,
                               "'data' must hold %ld %s numbers for "
                               "shape [%d, ...]", cap, q->dt, q->n);
        return OSP_EFORMAT;
    }
    if (u8)
        for (long i = 0; i < cap; i++)
            buf[i] = (uint8_t)vals[i];
    else
        memcpy(buf, vals, sizeof(float) * (size_t)cap);
    return 0;
}

/* What the answer needs from the request (infer_format runs after the
 * JSON is released): the output's name, binary or JSON, the "id". */
static int v2_answer_setup(infer_ctx_t *c, const v2_req_t *q) {
    c->format = infer_format;
    c->binary = wants_binary_output(q->json);
    c->oname = q->oname;
    json_t *id = json_object_get(q->json, "id");
    if (json_is_string(id) &&
        !(c->id = osp_arena_strndup(osp_http_req_arena(c->r),
                                    json_string_value(id),
                                    json_string_length(id)))) {
        osp_http_respond_error(c->r, 500, "out of memory");
        return OSP_ENOMEM;
    }
    return 0;
}

/* POST .../infer: KServe V2 JSON, with the binary tensor extension
 * (Inference-Header-Content-Length: the JSON header's length; input data
 * after it as raw little-endian tensors, BYTES elements as 4-byte length +
 * bytes). One input: the model's tensor (FP32/UINT8) or BYTES = encoded
 * images. The output is the model's output 0, raw. On a decode thread
 * (on_infer): parse, decode or copy the samples into the request's arena,
 * submit. Returns 1 when submitted, 0 when it answered an error (held until
 * the request resumes) or the submit was refused. */
static int v2_prepare(infer_ctx_t *c) {
    osp_http_req_t *r = c->r;
    osp_serve_t *s = c->s;
    osp__serve_model_t *sm = c->sm;
    uint64_t deadline;
    if (deadline_of(s, r, &deadline) < 0)
        return 0;
    /* Buffers come from the request's arena; only the parsed JSON
     * (jansson, malloc) needs releasing. */
    v2_req_t q = {0};
    uint8_t *buf = NULL;
    int announced = 0, rc = OSP_EFORMAT;
    if (v2_parse(r, sm, &q) < 0 ||
        !budget_reserve(r, sm->sample_bytes * (size_t)q.n))
        goto done;
    buf = osp_arena_alloc_aligned(osp_http_req_arena(r),
                                  sm->sample_bytes * (size_t)q.n, 64);
    c->n = q.n;
    if (!buf) {
        osp_http_respond_error(r, 500, "out of memory");
        goto done;
    }
    /* The batcher may wait for these while they are decoded or copied
     * (sched.h); taken back before the submit or on any error. */
    osp_sched_expect(sm->sched, q.n);
    announced = q.n;
    rc = !strcmp(q.dt, "BYTES") ? v2_decode_images(s, sm, r, &q, buf)
                                : v2_copy_tensor(sm, r, &q, buf);
    if (rc == 0)
        rc = v2_answer_setup(c, &q);
done:
    if (announced)
        osp_sched_expect(sm->sched, -announced);
    json_decref(q.json);
    return rc == 0 ? start_infer(c, buf, deadline) : 0;
}

/* ---- model-bound handlers ------------------------------------------------ */
/* They run between resolve (acquire) and release, so an unload waits for
 * them and never frees a model in use. */
typedef void (*model_fn)(osp_http_req_t *r, osp_serve_t *s,
                         osp__serve_model_t *sm);
/* An inference body (classify_prepare, v2_prepare), on a decode thread. */
typedef int (*infer_fn)(infer_ctx_t *c);

static void on_model(osp_http_req_t *r, osp_serve_t *s, model_fn fn) {
    osp__serve_model_t *sm = resolve(s, r, false);
    if (!sm)
        return;
    fn(r, s, sm);
    osp__serve_release(s, sm);
}

/* Queue-delay load shedding (shed.c): before the body is parsed or
 * decoded, so a refusal costs microseconds. Responds 503 + Retry-After and
 * returns false when the request is shed; else *ahead is what it waits
 * behind: the images queued and the requests still being prepared (most
 * hold one image). */
static bool admit(osp_http_req_t *r, osp_serve_t *s, osp__serve_model_t *sm,
                  int *ahead) {
    int change;
    double limit = -1;
    /* Admitted requests still being decoded will be queued in a moment. */
    int depth = osp_sched_queue_depth(sm->sched) +
                atomic_load(&sm->preparing);
    *ahead = depth;
    /* The queue bound counts them too: with the decode threads behind,
     * the backlog builds before the queue (the scheduler's own check
     * still applies at submit). */
    if (depth >= sm->max_queue) {
        osp_http_add_header(r, "Retry-After", SERVE_RETRY_AFTER_S);
        osp_http_respond_error(r, 503, "model '%s': queue full (%d queued or "
                               "being decoded, limit %d)", sm->name, depth,
                               sm->max_queue);
        return false;
    }
    bool ok = osp__serve_shed_admit(&sm->shed, depth, osp_now_ns(), &change,
                                    &limit);
    shed_log(s, sm, change, limit);
    if (ok)
        return true;
    osp_series_inc(sm->shed_total);
    osp_http_add_header(r, "Retry-After", SERVE_RETRY_AFTER_S);
    osp_http_respond_error(r, 503, "model '%s' is overloaded: its queue "
                           "delay is above the %lld ms target; retry later "
                           "or elsewhere", sm->name,
                           (long long)s->o.queue_delay_target_ms);
    return false;
}

/* A decode thread's job: the request was suspended with infer_resumed,
 * which answers once it is resumed — by infer_done after the batch, or
 * here when the request was answered or refused before it was queued. */
static void prepare_job(osp__serve_job_t *j) {
    infer_ctx_t *c = (infer_ctx_t *)((char *)j - offsetof(infer_ctx_t, job));
    if (c->prepare(c) == 1)
        return; /* queued: c may already be answered and gone */
    done_preparing(c);
    osp_http_req_resume(c->r);
}

/* On the event loop only what must be fast: the model, admission (a
 * refusal is answered here, in microseconds), then the request goes to a
 * decode thread (pool.c) and the loop serves its other connections. */
static void on_infer(osp_http_req_t *r, osp_serve_t *s, infer_fn fn) {
    osp__serve_model_t *sm = resolve(s, r, true);
    if (!sm)
        return;
    infer_ctx_t *c;
    int ahead;
    if (!admit(r, s, sm, &ahead) || !(c = ctx_new(s, sm, r))) {
        osp__serve_release(s, sm);
        return;
    }
    c->admit_ns = osp_now_ns();
    c->ahead_at_admit = ahead;
    c->prepare = fn;
    c->job.fn = prepare_job;
    atomic_fetch_add(&sm->preparing, 1);
    osp_http_req_suspend(r, infer_resumed, c);
    osp__serve_pool_post(s->pool, &c->job);
}

static void h_classify(osp_http_req_t *r, void *ud) {
    on_infer(r, ud, classify_prepare);
}

static void h_infer(osp_http_req_t *r, void *ud) {
    on_infer(r, ud, v2_prepare);
}

static void h_model_meta(osp_http_req_t *r, void *ud) {
    on_model(r, ud, model_meta);
}

static void h_model_ready(osp_http_req_t *r, void *ud) {
    on_model(r, ud, model_ready);
}

/* ---- metrics ------------------------------------------------------------- */

static void h_metrics(osp_http_req_t *r, void *ud) {
    osp_serve_t *s = ud;
    uint64_t shed_wait_ns = 0, now = osp_now_ns();
    osp__serve_model_t *ended[SERVE_MAX_MODELS];
    int n_ended = 0;
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < s->n_models; i++) {
        osp__serve_model_t *m = s->models[i];
        bool on;
        double delay_s, rate;
        uint64_t w;
        /* (A LOADING version may have no scheduler yet.) */
        int depth = atomic_load(&m->state) != SERVE_LOADING
                        ? osp_sched_queue_depth(m->sched) : -1;
        if (osp__serve_shed_read(&m->shed, depth, now, &on, &delay_s, &rate,
                                 &w) < 0) {
            m->refs++; /* logged below, outside models_mu */
            ended[n_ended++] = m;
        }
        shed_wait_ns += w;
        if (atomic_load(&m->state) != SERVE_READY)
            continue;
        osp_series_set(m->queue_depth, depth);
        osp_series_set(m->queue_delay, delay_s);
        osp_series_set(m->shedding, on);
    }
    pthread_mutex_unlock(&s->models_mu);
    for (int i = 0; i < n_ended; i++) {
        shed_log(s, ended[i], -1, -1);
        osp__serve_release(s, ended[i]);
    }
    /* This scrape itself is in flight; do not count it. The shed requests
     * count too (Little's law: each as long as an admitted request takes,
     * averaged since the previous scrape), so an autoscaler on this gauge
     * sees the demand and not only the work shedding let in. (A model
     * unloaded in between takes its share with it: a dip for one scrape.) */
    pthread_mutex_lock(&s->scrape_mu);
    double shed_inflight = 0;
    if (s->scrape_ns && now > s->scrape_ns &&
        shed_wait_ns >= s->scrape_shed_wait_ns)
        shed_inflight = (double)(shed_wait_ns - s->scrape_shed_wait_ns) /
                        (double)(now - s->scrape_ns);
    s->scrape_ns = now;
    s->scrape_shed_wait_ns = shed_wait_ns;
    pthread_mutex_unlock(&s->scrape_mu);
    osp_series_set(osp_metric_series0(s->m_inflight),
                   osp_http_server_inflight(s->http) - 1 + shed_inflight);
    char *text;
    size_t len;
    if (osp_metrics_render(s->metrics, &text, &len) < 0) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    osp_http_respond_owned(r, 200, OSP_METRICS_CONTENT_TYPE, text, len);
}


/* Model repository extension: every version served, loading, unloading,
 * failed, or on disk but not loaded. Triton's POST form may carry
 * {"ready": true} to list the READY ones only. */
static void h_repo_index(osp_http_req_t *r, void *ud) {
    osp_serve_t *s = ud;
    bool ready_only = false;
    size_t len;
    osp_http_req_body(r, &len);
    if (len > 0) {
        osp_err_t err = {0};
        json_t *b = osp_http_req_json(r, &err);
        if (!b || !json_is_object(b)) {
            json_decref(b);
            osp_http_respond_error(r, 400, "index request body must be a JSON "
                                   "object: %s", b ? "not an object" : err.msg);
            return;
        }
        json_t *rd = json_object_get(b, "ready");
        if (rd && !json_is_boolean(rd)) {
            json_decref(b);
            osp_http_respond_error(r, 400, "'ready' must be a boolean");
            return;
        }
        ready_only = json_is_true(rd);
        json_decref(b);
    }
    json_t *a = osp__serve_index(s, ready_only);
    if (!a) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    osp_http_respond_json(r, 200, a);
}

/* A repository load/unload. Loading builds engines and warms them up, and
 * unloading waits for the model's requests to finish — seconds, and the
 * latter needs HTTP threads to answer those requests — so in epoll mode it
 * runs on a thread of its own while the request is suspended. */
typedef struct repo_job_s {
    osp_serve_t *s;
    osp_http_req_t *r;
    const char *name;  /* the {model} parameter (request arena) */
    bool unload;
    int rc;
    osp_err_t err;
} repo_job_t;

static void repo_job_run(repo_job_t *j) {
    j->rc = j->unload ? osp__serve_unload(j->s, j->name, &j->err)
                      : osp__serve_load_named(j->s, j->name, &j->err);
}

/* POST /v2/repository/models/{model}/load answers the versions now READY;
 * unload answers UNLOADED. */
static void repo_job_answer(osp_http_req_t *r, void *ud) {
    repo_job_t *j = ud;
    osp_serve_t *s = j->s;
    const char *name = j->name;
    if (j->rc < 0) {
        osp_http_respond_error(r, osp_http_status_for(j->rc), "%s",
                               j->err.msg);
        return;
    }
    if (j->unload) {
        osp_http_respond_json(r, 200, json_pack("{s:s,s:s}", "name", name,
                                                "state", "UNLOADED"));
        return;
    }
    json_t *vers = json_array();
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i]->name, name) &&
            atomic_load(&s->models[i]->state) == SERVE_READY)
            json_array_append_new(vers, json_string(s->models[i]->version));
    pthread_mutex_unlock(&s->models_mu);
    osp_http_respond_json(r, 200, json_pack("{s:s,s:s,s:o}", "name", name,
                                            "state", "READY", "versions",
                                            vers));
}

static void *repo_job_main(void *arg) {
    repo_job_t *j = arg;
    repo_job_run(j);
    osp_http_req_resume(j->r); /* j (in the arena) is not touched again */
    return NULL;
}

static void repo_job(osp_http_req_t *r, osp_serve_t *s, bool unload) {
    repo_job_t *j = osp_arena_alloc(osp_http_req_arena(r), sizeof *j);
    if (!j) {
        osp_http_respond_error(r, 500, "out of memory");
        return;
    }
    memset(j, 0, sizeof *j);
    j->s = s;
    j->r = r;
    j->name = osp_http_req_param(r, "model");
    j->unload = unload;
    if (s->http_mode == OSP_HTTP_EPOLL) {
        pthread_attr_t at;
        pthread_t th;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        osp_http_req_suspend(r, repo_job_answer, j);
        int rc = pthread_create(&th, &at, repo_job_main, j);
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        /* No thread: do it here (blocks this HTTP thread meanwhile). */
        repo_job_run(j);
        osp_http_req_resume(r);
        return;
    }
    repo_job_run(j);
    repo_job_answer(r, j);
}

/* POST /v2/repository/models/{model}/load: serves the versions the model's
 * version_policy selects on disk now — loads new ones (warmed before they
 * take traffic), then drains and unloads the ones no longer selected; a
 * no-op when nothing changed. */
static void h_repo_load(osp_http_req_t *r, void *ud) {
    repo_job(r, ud, false);
}

/* POST /v2/repository/models/{model}/unload: stops serving the model once
 * its requests in flight are done (new ones get 404 at once). */
static void h_repo_unload(osp_http_req_t *r, void *ud) {
    repo_job(r, ud, true);
}

static void h_openapi(osp_http_req_t *r, void *ud) {
    osp_serve_t *s = ud;
    osp_http_respond(r, 200, "application/json", s->openapi, s->openapi_len);
}

/* GET /docs: the API reference page the dispatcher also serves (src/ui),
 * rendered in the browser from /openapi.json; GET /ui/{asset}: its script
 * and style sheet. */
static void h_docs(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_ui_respond(r, "docs.html");
}

static void h_ui_asset(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_ui_respond(r, osp_http_req_param(r, "asset"));
}

#define INFER_CODES "200 400 404 413 415 503 504"
static const osp__serve_route_t routes[] = {
    {"POST", "/v1/models/{model}/classify", h_classify,
     "Classify one or more images with the named model", SERVE_BODY_IMAGE,
     INFER_CODES, "ClassifyResponse", NULL},
    {"POST", "/v1/models/{model}/versions/{version}/classify", h_classify,
     "Classify one or more images with a version of the named model",
     SERVE_BODY_IMAGE, INFER_CODES, "ClassifyResponse", NULL},
    {"POST", "/classify", h_classify,
     "Classify one or more images with the default model", SERVE_BODY_IMAGE,
     INFER_CODES, "ClassifyResponse", NULL},
    {"GET", "/v2/health/live", h_live, "Liveness (KServe V2)", SERVE_BODY_NONE,
     "200", "Live", NULL},
    {"GET", "/v2/health/ready", h_ready, "Readiness (KServe V2)",
     SERVE_BODY_NONE, "200 503", "Ready", NULL},
    {"GET", "/ready", h_ready, "Readiness (short form)", SERVE_BODY_NONE,
     "200 503", "Ready", NULL},
    {"GET", "/v2", h_server_meta, "Server metadata (KServe V2)",
     SERVE_BODY_NONE, "200", "ServerMetadata", NULL},
    {"GET", "/v2/models/{model}", h_model_meta, "Model metadata (KServe V2)",
     SERVE_BODY_NONE, "200 404 503", "ModelMetadata", NULL},
    {"GET", "/v2/models/{model}/versions/{version}", h_model_meta,
     "Model version metadata (KServe V2)", SERVE_BODY_NONE, "200 404 503",
     "ModelMetadata", NULL},
    {"GET", "/v2/models/{model}/ready", h_model_ready,
     "Model readiness (KServe V2)", SERVE_BODY_NONE, "200 404 503",
     "ModelReady", NULL},
    {"GET", "/v2/models/{model}/versions/{version}/ready", h_model_ready,
     "Model version readiness (KServe V2)", SERVE_BODY_NONE, "200 404 503",
     "ModelReady", NULL},
    {"POST", "/v2/models/{model}/infer", h_infer,
     "Inference (KServe V2, JSON or binary tensor extension)", SERVE_BODY_V2,
     INFER_CODES, "InferResponse", NULL},
    {"POST", "/v2/models/{model}/versions/{version}/infer", h_infer,
     "Inference on a model version (KServe V2)", SERVE_BODY_V2, INFER_CODES,
     "InferResponse", NULL},
    {"GET", "/v2/repository/index", h_repo_index,
     "Models served (model repository extension)", SERVE_BODY_NONE, "200",
     "RepositoryIndex", NULL},
    {"POST", "/v2/repository/index", h_repo_index,
     "Models served (model repository extension, Triton's POST form; body "
     "{\"ready\": true} lists READY versions only)", SERVE_BODY_NONE,
     "200 400", "RepositoryIndex", NULL},
    {"POST", "/v2/repository/models/{model}/load", h_repo_load,
     "Load or reload a model from the repository (no restart): the "
     "versions its version_policy selects on disk", SERVE_BODY_NONE,
     "200 400 404 413 500 503", "RepositoryState", NULL},
    {"POST", "/v2/repository/models/{model}/unload", h_repo_unload,
     "Unload a model after its in-flight requests", SERVE_BODY_NONE,
     "200 404 503", "RepositoryState", NULL},
    {"GET", "/metrics", h_metrics, "Prometheus metrics (text format 0.0.4)",
     SERVE_BODY_NONE, "200", NULL, OSP_METRICS_CONTENT_TYPE},
    {"GET", "/openapi.json", h_openapi, "This OpenAPI 3 document",
     SERVE_BODY_NONE, "200", NULL, "application/json"},
    {"GET", "/docs", h_docs, "API reference page (renders /openapi.json)",
     SERVE_BODY_NONE, "200", NULL, "text/html"},
    {"GET", "/ui/{asset}", h_ui_asset,
     "A script or style sheet of the web pages (app.css, docs.js, ...)",
     SERVE_BODY_NONE, "200 404", NULL, "text/css"},
};

char *osp_serve_openapi_json(size_t *len) {
    return osp__serve_openapi(routes, (int)OSP_ARRAY_LEN(routes), len);
}

int osp__serve_routes(osp_serve_t *s) {
    s->openapi = osp__serve_openapi(routes, (int)OSP_ARRAY_LEN(routes),
                                    &s->openapi_len);
    if (!s->openapi)
        return OSP_ENOMEM;
    for (size_t i = 0; i < OSP_ARRAY_LEN(routes); i++) {
        int rc = osp_http_route(s->http, routes[i].method, routes[i].pattern,
                                routes[i].fn, s);
        if (rc < 0)
            return rc;
    }
    return 0;
}
