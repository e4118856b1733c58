/* onnx_import.h — ONNX protobuf → graph IR (private to src/engine). */
#ifndef OSPREY_ENGINE_ONNX_IMPORT_H
#define OSPREY_ENGINE_ONNX_IMPORT_H

#include "engine/ir/ir.h"

/* Parses an ONNX ModelProto from buf (not retained) and builds the IR.
 * Unsupported ops/attributes, opsets outside 7..17, and malformed or truncated
 * files are errors naming the node or field. Returns NULL on error. */
osp_graph_t *osp_onnx_import(const void *buf, size_t len, osp_err_t *err);

/* Converts a serialized onnx.TensorProto (as in the conformance test data's
 * *.pb files) into an osp_tensor_t with malloc'd data (caller frees
 * t->data). Used by tests and tools. */
int osp_onnx_parse_tensor(const void *buf, size_t len, osp_tensor_t *t,
                          char **name, osp_err_t *err);

#endif
