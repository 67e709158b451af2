// The byte-level BPE encoder of pipelines/tokenizer/bpe-model.ts for the data build, on UTF-8 bytes.
// It gives the same ids as BpeTokenizer.encode (test/tokenizer-native.test.ts) for texts of the Basic
// Multilingual Plane with pieces up to MAX_PIECE bytes; for any other text it returns undefined and the
// caller encodes in JS. Pre-tokenization is SPLIT_PATTERN's scanner (split-scanner.ts) over the same
// character class table, passed in from JS; merges use the same pair table (pair-ranks.ts).
#include "bpe.h"
#include "napi_args.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Class flags, as in split-scanner.ts.
enum { F_L = 1, F_M = 2, F_N = 4, F_WS = 8, F_NL = 16, F_HSP = 32 };
#define F_LM (F_L | F_M)
#define F_NOT_PUNCT (F_L | F_N | F_WS)

// Longer pieces are rare; they go to the JS encoder, whose heap-based merge is O(n log n).
#define MAX_PIECE 1024
#define CACHE_SLOTS (1u << 19)
#define CACHE_MAX_ENTRIES 200000u
#define CACHE_KEY_BYTES (1u << 22)
#define CACHE_IDS (1u << 21)

typedef struct {
  uint32_t hash, key, key_len, ids, n_ids;  // key_len 0: empty slot
} Slot;

typedef struct {
  int32_t byte_id[256];
  uint8_t flags[65536];
  int32_t *token_length;
  uint32_t vocab;
  int32_t *lefts, *rights, *ranks;  // pair table, open addressing (pair-ranks.ts)
  uint32_t pair_mask;
  int32_t *merged;  // merged id by rank
  uint32_t n_merges;
  Slot *slots;
  uint8_t *keys;
  int32_t *ids;
  uint32_t entries, keys_used, ids_used;
  // Scratch, grown as needed.
  uint16_t *units;
  uint32_t *unit_byte;
  size_t units_cap;
  int32_t *out;
  size_t out_cap;
} Bpe;

static void bpe_free(Bpe *b) {
  if (!b) return;
  free(b->token_length);
  free(b->lefts);
  free(b->rights);
  free(b->ranks);
  free(b->merged);
  free(b->slots);
  free(b->keys);
  free(b->ids);
  free(b->units);
  free(b->unit_byte);
  free(b->out);
  free(b);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  bpe_free((Bpe *)data);
}

static void *copy_of(const void *src, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p && bytes) memcpy(p, src, bytes);
  return p;
}

// memset through a pointer the compiler cannot see through: it turns malloc + memset(0) into calloc,
// which is what the caller avoids.
static void *(*volatile write_zeros)(void *, int, size_t) = memset;

// bpeCreate(byteId Int32Array(256), tokenLength Int32Array, lefts, rights, ranks Int32Array (pair table,
// power-of-two size), merged Int32Array by rank, flags Uint8Array(65536)) -> external handle.
static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 7) return js_fail(env, "bpeCreate: expected 7 arguments");
  void *p[7];
  size_t len[7];
  const napi_typedarray_type want[7] = {napi_int32_array, napi_int32_array, napi_int32_array, napi_int32_array,
                                        napi_int32_array, napi_int32_array, napi_uint8_array};
  for (int i = 0; i < 7; i++)
    if (!js_typed(env, argv[i], want[i], &p[i], &len[i])) return js_fail(env, "bpeCreate: argument of the wrong type");
  if (len[0] != 256 || len[6] != 65536 || len[2] != len[3] || len[2] != len[4] || len[2] == 0 ||
      (len[2] & (len[2] - 1)) != 0)
    return js_fail(env, "bpeCreate: table of the wrong size");
  Bpe *b = (Bpe *)calloc(1, sizeof(Bpe));
  if (!b) return js_fail(env, "bpeCreate: out of memory");
  memcpy(b->byte_id, p[0], sizeof(b->byte_id));
  memcpy(b->flags, p[6], sizeof(b->flags));
  b->vocab = (uint32_t)len[1];
  b->token_length = (int32_t *)copy_of(p[1], len[1] * 4);
  b->lefts = (int32_t *)copy_of(p[2], len[2] * 4);
  b->rights = (int32_t *)copy_of(p[3], len[3] * 4);
  b->ranks = (int32_t *)copy_of(p[4], len[4] * 4);
  b->pair_mask = (uint32_t)len[2] - 1;
  b->merged = (int32_t *)copy_of(p[5], len[5] * 4);
  b->n_merges = (uint32_t)len[5];
  // Written here rather than calloc'd: calloc's fresh pages are first read (lookups) as the shared zero
  // page, and the first write to each then swaps the page under a TLB flush that interrupts every other
  // thread of the process; with two data workers that was ~5% of the build's CPU (perf: do_wp_page ->
  // flush_tlb_mm_range IPIs from piece_ids).
  b->slots = (Slot *)malloc(CACHE_SLOTS * sizeof(Slot));
  if (b->slots) write_zeros(b->slots, 0, CACHE_SLOTS * sizeof(Slot));
  b->keys = (uint8_t *)malloc(CACHE_KEY_BYTES);
  b->ids = (int32_t *)malloc(CACHE_IDS * sizeof(int32_t));
  if (!b->token_length || !b->lefts || !b->rights || !b->ranks || !b->merged || !b->slots || !b->keys || !b->ids) {
    bpe_free(b);
    return js_fail(env, "bpeCreate: out of memory");
  }
  napi_value ext;
  if (napi_create_external(env, b, finalize, NULL, &ext) != napi_ok) {
    bpe_free(b);
    return NULL;
  }
  return ext;
}

static int32_t pair_rank(const Bpe *b, int32_t l, int32_t r) {
  uint32_t h = (((uint32_t)l * 0x9e3779b1u) ^ ((uint32_t)r * 0x85ebca6bu)) & b->pair_mask;
  for (;;) {
    int32_t k = b->lefts[h];
    if (k == -1) return -1;
    if (k == l && b->rights[h] == r) return b->ranks[h];
    h = (h + 1) & b->pair_mask;
  }
}

// BPE over one piece (BpeTokenizer.mergeShort): merge the lowest-rank adjacent pair, leftmost first.
// syms holds the piece's byte tokens and receives the result; returns the number of tokens.
static uint32_t merge(const Bpe *b, int32_t *syms, int32_t *ranks, uint32_t n) {
  if (n < 2) return n;
  for (uint32_t i = 0; i + 1 < n; i++) ranks[i] = pair_rank(b, syms[i], syms[i + 1]);
  for (;;) {
    int64_t best = -1;
    int32_t best_rank = INT32_MAX;
    for (uint32_t i = 0; i + 1 < n; i++) {
      int32_t r = ranks[i];
      if (r >= 0 && r < best_rank) {
        best_rank = r;
        best = i;
      }
    }
    if (best < 0) break;
    uint32_t at = (uint32_t)best;
    syms[at] = b->merged[best_rank];
    memmove(syms + at + 1, syms + at + 2, (n - at - 2) * sizeof(int32_t));
    memmove(ranks + at, ranks + at + 1, (n - at - 2) * sizeof(int32_t));
    n--;
    if (at > 0) ranks[at - 1] = pair_rank(b, syms[at - 1], syms[at]);
    if (at + 1 < n) ranks[at] = pair_rank(b, syms[at], syms[at + 1]);
  }
  return n;
}

static uint32_t hash_bytes(const uint8_t *s, uint32_t n) {
  uint32_t h = 0x811c9dc5u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x01000193u;
  return h ^ (h >> 15);
}

// The cached ids of a piece, encoding and caching it on a miss. NULL when out of memory.
static const int32_t *piece_ids(Bpe *b, const uint8_t *s, uint32_t n, uint32_t *n_ids) {
  uint32_t h = hash_bytes(s, n);
  uint32_t mask = CACHE_SLOTS - 1;
  uint32_t slot = h & mask;
  for (; b->slots[slot].key_len != 0; slot = (slot + 1) & mask) {
    const Slot *e = &b->slots[slot];
    if (e->hash == h && e->key_len == n && memcmp(b->keys + e->key, s, n) == 0) {
      *n_ids = e->n_ids;
      return b->ids + e->ids;
    }
  }
  int32_t syms[MAX_PIECE], ranks[MAX_PIECE];
  for (uint32_t i = 0; i < n; i++) syms[i] = b->byte_id[s[i]];
  uint32_t m = merge(b, syms, ranks, n);
  if (b->entries >= CACHE_MAX_ENTRIES || b->keys_used + n > CACHE_KEY_BYTES || b->ids_used + m > CACHE_IDS) {
    memset(b->slots, 0, CACHE_SLOTS * sizeof(Slot));
    b->entries = b->keys_used = b->ids_used = 0;
    slot = h & mask;
  }
  Slot *e = &b->slots[slot];
  e->hash = h;
  e->key = b->keys_used;
  e->key_len = n;
  e->ids = b->ids_used;
  e->n_ids = m;
  memcpy(b->keys + b->keys_used, s, n);
  memcpy(b->ids + b->ids_used, syms, m * sizeof(int32_t));
  b->keys_used += n;
  b->ids_used += m;
  b->entries++;
  *n_ids = m;
  return b->ids + e->ids;
}

static uint32_t run_with(const uint16_t *t, uint32_t n, uint32_t i, int mask, const uint8_t *F) {
  while (i < n && (F[t[i]] & mask) != 0) i++;
  return i;
}

static uint32_t punct_run(const uint16_t *t, uint32_t n, uint32_t i, const uint8_t *F) {
  while (i < n && (F[t[i]] & F_NOT_PUNCT) == 0) i++;
  return i;
}

// splitPieceEnd of split-scanner.ts, for text with no surrogates (one unit per character).
static uint32_t piece_end(const uint16_t *t, uint32_t n, uint32_t i, const uint8_t *F) {
  int f0 = F[t[i]];
  if (f0 & F_LM) return run_with(t, n, i, F_LM, F);
  if ((f0 & (F_NL | F_L | F_N)) == 0 && i + 1 < n && (F[t[i + 1]] & F_LM) != 0) return run_with(t, n, i + 1, F_LM, F);
  if (f0 & F_N) {
    uint32_t j = i + 1;
    for (int k = 1; k < 3 && j < n; k++) {
      if ((F[t[j]] & F_N) == 0) break;
      j++;
    }
    return j;
  }
  if (t[i] == 0x20 && i + 1 < n && (F[t[i + 1]] & F_NOT_PUNCT) == 0) return punct_run(t, n, i + 1, F);
  if ((f0 & F_NOT_PUNCT) == 0) return punct_run(t, n, i, F);
  uint32_t ws_end = run_with(t, n, i, F_WS, F);
  for (uint32_t k = ws_end; k-- > i;) {
    if (F[t[k]] & F_NL) return run_with(t, n, k + 1, F_HSP, F);
  }
  if (ws_end < n && ws_end - i >= 2) return ws_end - 1;
  return ws_end;
}

// UTF-8 to UTF-16 units with each unit's byte offset; 0 if the text holds a character outside the BMP
// or is not valid UTF-8 (the data build's decode step has already rejected that).
static int decode_bmp(const uint8_t *s, size_t len, uint16_t *units, uint32_t *unit_byte, uint32_t *n_units) {
  uint32_t n = 0;
  size_t i = 0;
  while (i < len) {
    uint32_t c = s[i];
    unit_byte[n] = (uint32_t)i;
    if (c < 0x80) {
      i += 1;
    } else if ((c & 0xe0) == 0xc0 && i + 1 < len) {
      c = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f);
      i += 2;
    } else if ((c & 0xf0) == 0xe0 && i + 2 < len) {
      c = ((c & 0x0f) << 12) | ((uint32_t)(s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
      if (c >= 0xd800 && c <= 0xdfff) return 0;
      i += 3;
    } else {
      return 0;
    }
    units[n++] = (uint16_t)c;
  }
  unit_byte[n] = (uint32_t)len;
  *n_units = n;
  return 1;
}

// bpeEncode(handle, utf8 bytes) -> [ids Int32Array, byteOffsets Int32Array (ids.length + 1)], or
// undefined when the text must be encoded in JS (see the top of this file).
static napi_value encode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Bpe *b = NULL;
  void *src;
  size_t len;
  if (argc < 2 || napi_get_value_external(env, argv[0], (void **)&b) != napi_ok || !b)
    return js_fail(env, "bpeEncode: expected a handle from bpeCreate");
  if (!js_typed(env, argv[1], napi_uint8_array, &src, &len)) return js_fail(env, "bpeEncode: expected a Uint8Array");
  napi_value undef;
  napi_get_undefined(env, &undef);
  if (len >= UINT32_MAX / 2) return undef;
  if (b->units_cap < len + 1) {
    free(b->units);
    free(b->unit_byte);
    b->units = (uint16_t *)malloc((len + 1) * sizeof(uint16_t));
    b->unit_byte = (uint32_t *)malloc((len + 1) * sizeof(uint32_t));
    b->units_cap = b->units && b->unit_byte ? len + 1 : 0;
    if (!b->units_cap) return js_fail(env, "bpeEncode: out of memory");
  }
  // Never more tokens than bytes.
  if (b->out_cap < len + 1) {
    free(b->out);
    b->out = (int32_t *)malloc((len + 1) * sizeof(int32_t));
    b->out_cap = b->out ? len + 1 : 0;
    if (!b->out_cap) return js_fail(env, "bpeEncode: out of memory");
  }
  const uint8_t *s = (const uint8_t *)src;
  uint32_t n_units;
  if (!decode_bmp(s, len, b->units, b->unit_byte, &n_units)) return undef;
  size_t n = 0;
  for (uint32_t start = 0; start < n_units;) {
    uint32_t end = piece_end(b->units, n_units, start, b->flags);
    uint32_t from = b->unit_byte[start], to = b->unit_byte[end];
    start = end;
    if (to - from > MAX_PIECE) return undef;
    uint32_t m;
    const int32_t *ids = piece_ids(b, s + from, to - from, &m);
    memcpy(b->out + n, ids, m * sizeof(int32_t));
    n += m;
  }
  void *ids_data, *off_data;
  napi_value ids_ab, off_ab, ids_arr, off_arr, result;
  if (napi_create_arraybuffer(env, n * sizeof(int32_t), &ids_data, &ids_ab) != napi_ok) return NULL;
  if (napi_create_arraybuffer(env, (n + 1) * sizeof(int32_t), &off_data, &off_ab) != napi_ok) return NULL;
  memcpy(ids_data, b->out, n * sizeof(int32_t));
  int32_t *off = (int32_t *)off_data;
  int32_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    off[i] = pos;
    pos += b->token_length[b->out[i]];
  }
  off[n] = pos;
  napi_create_typedarray(env, napi_int32_array, n, ids_ab, 0, &ids_arr);
  napi_create_typedarray(env, napi_int32_array, n + 1, off_ab, 0, &off_arr);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, ids_arr);
  napi_set_element(env, result, 1, off_arr);
  return result;
}

void sdt_bpe_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"bpeCreate", NULL, create, NULL, NULL, NULL, napi_default, NULL},
      {"bpeEncode", NULL, encode, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
