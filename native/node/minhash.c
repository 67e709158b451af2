// minhashSignature of pipelines/steps/minhash.ts on UTF-8 bytes, with the same values: the text is read
// as the UTF-16 code units JS sees (a character outside the BMP is two surrogate units), words are runs
// of [A-Za-z0-9_] and every other non-space unit, shingles are hashed with fmix32 and binned by one
// permutation, and empty bins are densified by rotation. test/data-steps.test.ts compares the two.
#include "minhash.h"
#include "napi_args.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

static int is_word(uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_space(uint32_t c) { return c == 32 || c == 9 || c == 10 || c == 13 || c == 12 || c == 11; }

// The next UTF-16 unit at *i (advancing it); *pending carries a low surrogate between calls.
static uint32_t next_unit(const uint8_t *s, size_t len, size_t *i, uint32_t *pending) {
  if (*pending) {
    uint32_t u = *pending;
    *pending = 0;
    return u;
  }
  uint32_t c = s[*i];
  if (c < 0x80 || *i + 1 >= len) {
    *i += 1;
    return c;
  }
  if ((c & 0xe0) == 0xc0) {
    c = ((c & 0x1f) << 6) | (s[*i + 1] & 0x3f);
    *i += 2;
    return c;
  }
  if ((c & 0xf0) == 0xe0 && *i + 2 < len) {
    c = ((c & 0x0f) << 12) | ((uint32_t)(s[*i + 1] & 0x3f) << 6) | (s[*i + 2] & 0x3f);
    *i += 3;
    return c;
  }
  if (*i + 3 < len) {
    c = ((c & 0x07) << 18) | ((uint32_t)(s[*i + 1] & 0x3f) << 12) | ((uint32_t)(s[*i + 2] & 0x3f) << 6) |
        (s[*i + 3] & 0x3f);
    *i += 4;
    c -= 0x10000;
    *pending = 0xdc00 + (c & 0x3ff);
    return 0xd800 + (c >> 10);
  }
  *i += 1;
  return c;
}

// The shingle of words first..first+k-1 (indices into the ring of `size`): fmix32 chain over the words,
// then one-permutation binning into sig.
static void add_shingle(uint32_t *sig, const uint32_t *ring, size_t first, uint32_t k, uint32_t size, uint32_t bits,
                        uint32_t value_mask) {
  uint32_t h = 0;
  for (uint32_t j = 0; j < k; j++) h = fmix32(h ^ (ring[(first + j) % size] * (j + 1)));
  uint32_t v = fmix32(h ^ 0x5bd1e995u);
  uint32_t bin = bits == 0 ? 0 : v >> (32 - bits);
  uint32_t value = v & value_mask;
  if (value < sig[bin]) sig[bin] = value;
}

// minhash(utf8 bytes, numPerm (a power of two), shingle) -> Uint32Array(numPerm).
static napi_value minhash(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t len;
  void *data;
  if (argc < 3 || !js_typed(env, argv[0], napi_uint8_array, &data, &len))
    return js_fail(env, "minhash: expected UTF-8 bytes in a Uint8Array");
  uint32_t bins, shingle;
  if (napi_get_value_uint32(env, argv[1], &bins) != napi_ok || bins == 0 || bins > 65536 || (bins & (bins - 1)))
    return js_fail(env, "minhash: numPerm must be a power of two up to 65536");
  if (napi_get_value_uint32(env, argv[2], &shingle) != napi_ok || shingle == 0)
    return js_fail(env, "minhash: shingle must be a positive integer");
  uint32_t bits = 0;
  while ((1u << bits) < bins) bits++;
  const uint8_t *s = (const uint8_t *)data;
  uint32_t *sig = (uint32_t *)malloc(2 * bins * sizeof(uint32_t));
  // The last `shingle` word hashes: shingles are hashed as the words stream by, with no array of all words.
  uint32_t *ring = (uint32_t *)malloc(shingle * sizeof(uint32_t));
  if (!sig || !ring) {
    free(sig);
    free(ring);
    return js_fail(env, "minhash: out of memory");
  }
  const uint32_t EMPTY = 0xffffffffu;
  for (uint32_t b = 0; b < bins; b++) sig[b] = EMPTY;
  const uint32_t value_mask = bits == 0 ? 0xffffffffu : (uint32_t)((1u << (32 - bits)) - 1);
  size_t n = 0, i = 0;
  uint32_t pending = 0;
  uint32_t c = 0;
  int have = 0;  // c holds a unit read but not used yet
  while (have || pending || i < len) {
    if (!have) c = next_unit(s, len, &i, &pending);
    have = 0;
    if (is_space(c)) continue;
    uint32_t h = 0x811c9dc5u;
    if (is_word(c)) {
      h = (h ^ c) * 0x01000193u;
      while (pending || i < len) {
        c = next_unit(s, len, &i, &pending);
        if (!is_word(c)) {
          have = 1;
          break;
        }
        h = (h ^ c) * 0x01000193u;
      }
    } else {
      h = (h ^ c) * 0x01000193u;
    }
    ring[n % shingle] = h;
    n++;
    // A full window of `shingle` words, oldest first.
    if (n >= shingle) add_shingle(sig, ring, n - shingle, shingle, shingle, bits, value_mask);
  }
  // Fewer words than a shingle: one shingle of all of them (minhash.ts: k = min(shingle, words)).
  if (n > 0 && n < shingle) add_shingle(sig, ring, 0, (uint32_t)n, shingle, bits, value_mask);
  free(ring);
  // Densify (minhash.ts densify): an empty bin borrows from the next filled one, offset by the distance.
  int any = 0;
  for (uint32_t b = 0; b < bins; b++) any |= sig[b] != EMPTY;
  uint32_t *out = sig + bins;
  memcpy(out, sig, bins * sizeof(uint32_t));
  if (any) {
    for (uint32_t b = 0; b < bins; b++) {
      if (sig[b] != EMPTY) continue;
      uint32_t t = 1;
      while (sig[(b + t) % bins] == EMPTY) t++;
      out[b] = (uint32_t)((uint64_t)sig[(b + t) % bins] + ((uint64_t)value_mask + 1) * t);
    }
  }
  void *res_data;
  napi_value res_ab, result;
  if (napi_create_arraybuffer(env, bins * sizeof(uint32_t), &res_data, &res_ab) != napi_ok) {
    free(sig);
    return NULL;
  }
  memcpy(res_data, out, bins * sizeof(uint32_t));
  free(sig);
  napi_create_typedarray(env, napi_uint32_array, bins, res_ab, 0, &result);
  return result;
}

void sdt_minhash_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"minhash", NULL, minhash, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, 1, props);
}
