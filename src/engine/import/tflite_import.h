/* tflite_import.h — TFLite FlatBuffer → graph IR (private to src/engine). */
#ifndef OSPREY_ENGINE_TFLITE_IMPORT_H
#define OSPREY_ENGINE_TFLITE_IMPORT_H

#include "engine/ir/ir.h"

/* Builds the IR of a TFLite model (schema version 3, first subgraph) from
 * buf (not retained). NHWC tensors become NCHW in the IR (see the file
 * comment in tflite_import.c). Returns NULL and fills err on malformed or
 * unsupported input. */
osp_graph_t *osp_tflite_import(const void *buf, size_t len, osp_err_t *err);

#endif
