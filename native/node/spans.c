// nodesToSpanArrays of pipelines/steps/spans.ts: node byte ranges to token ranges, the same spans in the
// same order (test/data-spans.test.ts compares the two).
#include "spans.h"
#include "napi_args.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The first token at or after `from` that starts at or after byte b (nTokens when none): galloping from
// `from`, since most nodes span a few tokens.
static uint32_t token_end_at(const int32_t *off, uint32_t n_tokens, int32_t b, uint32_t from) {
  uint32_t lo = from, step = 1;
  while (lo + step < n_tokens && off[lo + step] < b) {
    lo += step;
    step *= 2;
  }
  uint32_t hi = lo + step < n_tokens ? lo + step : n_tokens;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (off[mid] >= b)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

// Spans kept since the start token last moved, as (end, kind) keys: a linear scan while there are few, an
// open-addressing set once there are many (a long chain of nested nodes starting at one token).
typedef struct {
  uint64_t *keys;  // 0: empty (keys are end * 8 + kind + 1)
  uint32_t cap, size;
} Set;

static int set_add(Set *s, uint64_t key) {  // 1 if added, 0 if present, -1 out of memory
  if (2 * (s->size + 1) > s->cap) {
    uint32_t cap = s->cap ? 2 * s->cap : 1024;
    uint64_t *keys = (uint64_t *)calloc(cap, sizeof(uint64_t));
    if (!keys) return -1;
    for (uint32_t i = 0; i < s->cap; i++) {
      if (!s->keys[i]) continue;
      uint32_t h = (uint32_t)(s->keys[i] * 0x9e3779b97f4a7c15ull >> 40) & (cap - 1);
      while (keys[h]) h = (h + 1) & (cap - 1);
      keys[h] = s->keys[i];
    }
    free(s->keys);
    s->keys = keys;
    s->cap = cap;
  }
  uint32_t h = (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 40) & (s->cap - 1);
  while (s->keys[h]) {
    if (s->keys[h] == key) return 0;
    h = (h + 1) & (s->cap - 1);
  }
  s->keys[h] = key;
  s->size++;
  return 1;
}

static napi_value make_array(napi_env env, napi_typedarray_type type, size_t elem, size_t n, const void *src) {
  void *data;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, n * elem, &data, &ab) != napi_ok) return NULL;
  if (n) memcpy(data, src, n * elem);
  if (napi_create_typedarray(env, type, n, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

// tokenSpans(nodes Int32Array of (kind, start byte, end byte) triples in pre-order, byteOffsets
// Int32Array (tokens + 1)) -> [kind Uint8Array, start Int32Array, end Int32Array].
static napi_value token_spans(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *nd, *od;
  size_t n_len, o_len;
  if (argc < 2 || !js_typed(env, argv[0], napi_int32_array, &nd, &n_len) ||
      !js_typed(env, argv[1], napi_int32_array, &od, &o_len) || o_len == 0 || o_len > UINT32_MAX)
    return js_fail(env, "tokenSpans: expected (nodes Int32Array, byteOffsets Int32Array)");
  const int32_t *nodes = (const int32_t *)nd;
  const int32_t *off = (const int32_t *)od;
  const uint32_t n_tokens = (uint32_t)(o_len - 1);
  const size_t count = n_len / 3;
  uint8_t *kind = (uint8_t *)malloc(count ? count : 1);
  int32_t *start = (int32_t *)malloc((count ? count : 1) * sizeof(int32_t));
  int32_t *end = (int32_t *)malloc((count ? count : 1) * sizeof(int32_t));
  Set set = {NULL, 0, 0};
  int use_set = 0, oom = !kind || !start || !end;
  size_t n = 0;
  if (!oom && n_tokens > 0) {
    uint32_t s = 0;
    size_t run_start = 0;
    for (size_t i = 0; i < count && !oom; i++) {
      int32_t k = nodes[3 * i], sb = nodes[3 * i + 1], eb = nodes[3 * i + 2];
      uint32_t s0 = s;
      while (s + 1 < n_tokens && off[s + 1] <= sb) s++;
      if (s != s0) {
        run_start = n;
        if (use_set) {
          memset(set.keys, 0, set.cap * sizeof(uint64_t));
          set.size = 0;
          use_set = 0;
        }
      }
      uint32_t e = token_end_at(off, n_tokens, eb, s);
      if (e < s + 1) e = s + 1;
      uint64_t key = (uint64_t)e * 8 + (uint64_t)k + 1;
      if (use_set) {
        int r = set_add(&set, key);
        if (r < 0) oom = 1;
        if (r <= 0) continue;
      } else {
        int dup = 0;
        for (size_t j = run_start; j < n; j++) {
          if (end[j] == (int32_t)e && kind[j] == (uint8_t)k) {
            dup = 1;
            break;
          }
        }
        if (dup) continue;
        if (n - run_start >= 32) {
          use_set = 1;
          for (size_t j = run_start; j < n && !oom; j++) oom = set_add(&set, (uint64_t)end[j] * 8 + kind[j] + 1) < 0;
          if (!oom) oom = set_add(&set, key) < 0;
        }
      }
      kind[n] = (uint8_t)k;
      start[n] = (int32_t)s;
      end[n] = (int32_t)e;
      n++;
    }
  }
  free(set.keys);
  napi_value result = NULL;
  if (oom) {
    js_fail(env, "tokenSpans: out of memory");
  } else {
    napi_value a = make_array(env, napi_uint8_array, 1, n, kind);
    napi_value b = make_array(env, napi_int32_array, 4, n, start);
    napi_value c = make_array(env, napi_int32_array, 4, n, end);
    if (a && b && c && napi_create_array_with_length(env, 3, &result) == napi_ok) {
      napi_set_element(env, result, 0, a);
      napi_set_element(env, result, 1, b);
      napi_set_element(env, result, 2, c);
    }
  }
  free(kind);
  free(start);
  free(end);
  return result;
}

void sdt_spans_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"tokenSpans", NULL, token_spans, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, 1, props);
}
