// Argument helpers shared by the addon's N-API entry points.
#pragma once

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>

// Throws a JS Error with `msg`; returns NULL for the caller to return.
static inline napi_value js_fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

// 1 when `v` is a typed array of type `want` (its data and element count are then set), else 0.
static inline int js_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) != napi_ok) return 0;
  return type == want;
}
