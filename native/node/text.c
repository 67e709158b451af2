// Statistics of valid UTF-8 text in the units JS strings use (UTF-16 code units), so the data build's
// decode and size filter (decode.ts, filters.ts) can judge bytes without making a string of them.
#include "text.h"
#include "napi_args.h"

#include <stdint.h>
#include <string.h>

// textStats(utf8 bytes, probe units) -> Int32Array [UTF-16 length, control characters among the first
// `probe` units (below 32, other than tab, LF, CR and FF), longest line in units (lines split at LF),
// number of lines]. The bytes must be valid UTF-8 (the caller checks).
static napi_value text_stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t len = 0;
  void *data = NULL;
  uint32_t probe = 0;
  if (argc < 2 || !js_typed(env, argv[0], napi_uint8_array, &data, &len) ||
      napi_get_value_uint32(env, argv[1], &probe) != napi_ok)
    return js_fail(env, "textStats: expected (Uint8Array, probe units)");
  const uint8_t *s = (const uint8_t *)data;
  int64_t units = 0, line_start = 0, longest = 0, lines = 1, control = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t b = s[i];
    if ((b & 0xc0) == 0x80) continue;  // continuation byte
    if (b < 32) {
      if (b == '\n') {
        if (units - line_start > longest) longest = units - line_start;
        lines++;
        line_start = units + 1;
      } else if (b != 9 && b != 13 && b != 12 && units < probe) {
        control++;
      }
    }
    units += b >= 0xf0 ? 2 : 1;  // a character outside the BMP is a surrogate pair
  }
  if (units - line_start > longest) longest = units - line_start;
  int32_t out[4] = {(int32_t)units, (int32_t)control, (int32_t)longest, (int32_t)lines};
  void *res;
  napi_value res_ab, result;
  if (napi_create_arraybuffer(env, sizeof(out), &res, &res_ab) != napi_ok) return NULL;
  memcpy(res, out, sizeof(out));
  napi_create_typedarray(env, napi_int32_array, 4, res_ab, 0, &result);
  return result;
}

void sdt_text_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"textStats", NULL, text_stats, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, 1, props);
}
