/* ui.h — the web pages both servers answer (the dispatcher's try-it page,
 * live status page and API reference; the worker's API reference): plain
 * HTML/CSS/JS files kept in src/ui/www/ and compiled into the binary by
 * CMakeLists.txt, so that the pages work with no network access and no file
 * beside the binary. docs/ui.md describes the pages. */
#ifndef OSPREY_UI_H
#define OSPREY_UI_H

#include <stddef.h>

#include "osprey/http.h"

typedef struct osp_ui_asset_s {
    const char *name;          /* file name in src/ui/www ("app.css") */
    const char *content_type;  /* from the extension, with charset */
    const char *etag;          /* quoted strong validator (content hash) */
    const unsigned char *data;
    size_t len;
} osp_ui_asset_t;

/* The embedded file called name (no directory part); NULL when none. */
const osp_ui_asset_t *osp_ui_asset_find(const char *name);

/* Answers req with the asset called name: 200 with its Content-Type, ETag,
 * Cache-Control (revalidate every time: the assets change with the binary)
 * and a Content-Security-Policy that allows nothing but this origin; 304
 * when If-None-Match names the ETag; 404 when there is no such asset. */
int osp_ui_respond(osp_http_req_t *req, const char *name);

/* A route handler: ud is the asset name (const char *), or NULL to take it
 * from the route's {asset} parameter (GET /ui/{asset}). */
void osp_ui_handler(osp_http_req_t *req, void *ud);

#endif
