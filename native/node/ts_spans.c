// sdt_ts_spans: a Node addon for the data build's hot steps. Here: tree-sitter parse and span nodes in
// one native call (bpe.c: the BPE encoder; minhash.c: the MinHash signature; spans.c: token ranges of the
// nodes; text.c: text statistics).
// node-tree-sitter's cursor costs one N-API call per property or move (~5 per node, ~0.1 us each), which
// made the span walk cost half the parse; here the walk is plain C over the tree, and the tree is freed
// at once instead of waiting for V8 to collect a JS object. The grammar comes from the grammar package's
// own binding (a TSLanguage external), the tree-sitter core from node-tree-sitter's vendored sources, so
// both parsers are the same code.
#include <node_api.h>
#include "napi_args.h"
#include "bpe.h"
#include "minhash.h"
#include "spans.h"
#include "text.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tree_sitter/api.h>

#define ERROR_SYMBOL 65535

typedef struct {
  TSParser *parser;
  const TSLanguage *language;
  int32_t *out;
  size_t cap;
} State;

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  State *s = (State *)data;
  if (s->parser) ts_parser_delete(s->parser);
  free(s->out);
  free(s);
}

static State *state_of(napi_env env) {
  State *s = NULL;
  if (napi_get_instance_data(env, (void **)&s) == napi_ok && s) return s;
  s = (State *)calloc(1, sizeof(State));
  if (!s) return NULL;
  s->parser = ts_parser_new();
  napi_set_instance_data(env, s, free_state, NULL);
  return s;
}

static int get_language(napi_env env, napi_value v, const TSLanguage **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return 0;
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return 0;
  *out = (const TSLanguage *)p;
  return 1;
}

static int push(State *s, size_t *n, int32_t a, int32_t b, int32_t c) {
  if (*n + 3 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 3 * 4096;
    int32_t *grown = (int32_t *)realloc(s->out, cap * sizeof(int32_t));
    if (!grown) return 0;
    s->out = grown;
    s->cap = cap;
  }
  s->out[(*n)++] = a;
  s->out[(*n)++] = b;
  s->out[(*n)++] = c;
  return 1;
}

// symbols(language) -> [name, named][] by symbol id, ERROR (65535) not included.
static napi_value symbols(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const TSLanguage *lang;
  if (argc < 1 || !get_language(env, argv[0], &lang)) return js_fail(env, "symbols: expected a tree-sitter language");
  uint32_t count = ts_language_symbol_count(lang);
  napi_value arr;
  napi_create_array_with_length(env, count, &arr);
  for (uint32_t i = 0; i < count; i++) {
    const char *name = ts_language_symbol_name(lang, (TSSymbol)i);
    napi_value pair, str, named;
    napi_create_array_with_length(env, 2, &pair);
    napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &str);
    napi_get_boolean(env, ts_language_symbol_type(lang, (TSSymbol)i) == TSSymbolTypeRegular, &named);
    napi_set_element(env, pair, 0, str);
    napi_set_element(env, pair, 1, named);
    napi_set_element(env, arr, i, pair);
  }
  return arr;
}

// parse(language, utf8 bytes, kinds Int16Array(65536) by symbol: span kind or -1) ->
// Int32Array [errors, kind0, startByte0, endByte0, kind1, ...]: every node with a span kind and a
// non-empty range, in pre-order; errors counts ERROR and MISSING nodes.
static napi_value parse(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const TSLanguage *lang;
  void *src, *kdata;
  size_t len, klen;
  if (argc < 3 || !get_language(env, argv[0], &lang)) return js_fail(env, "parse: expected a tree-sitter language");
  if (!js_typed(env, argv[1], napi_uint8_array, &src, &len)) return js_fail(env, "parse: expected UTF-8 bytes in a Uint8Array");
  if (!js_typed(env, argv[2], napi_int16_array, &kdata, &klen) || klen != 65536)
    return js_fail(env, "parse: expected an Int16Array(65536) of span kinds");
  if (len > UINT32_MAX) return js_fail(env, "parse: input over 4 GB");
  const int16_t *kinds = (const int16_t *)kdata;
  State *s = state_of(env);
  if (!s || !s->parser) return js_fail(env, "parse: out of memory");
  if (s->language != lang) {
    if (!ts_parser_set_language(s->parser, lang)) return js_fail(env, "parse: incompatible tree-sitter language version");
    s->language = lang;
  }
  TSTree *tree = ts_parser_parse_string_encoding(s->parser, NULL, (const char *)src, (uint32_t)len, TSInputEncodingUTF8);
  if (!tree) return js_fail(env, "parse: tree-sitter returned no tree");
  // Slot 0 holds the error count, written last.
  size_t n = 0;
  int ok = push(s, &n, 0, 0, 0);
  n = 1;
  int32_t errors = 0;
  TSNode root = ts_tree_root_node(tree);
  const int count_errors = ts_node_has_error(root);
  TSTreeCursor c = ts_tree_cursor_new(root);
  while (ok) {
    TSNode node = ts_tree_cursor_current_node(&c);
    TSSymbol sym = ts_node_symbol(node);
    if (count_errors && (sym == ERROR_SYMBOL || ts_node_is_missing(node))) errors++;
    int16_t k = kinds[sym];
    if (k >= 0) {
      uint32_t a = ts_node_start_byte(node), b = ts_node_end_byte(node);
      if (b > a) ok = push(s, &n, k, (int32_t)a, (int32_t)b);
    }
    if (ts_tree_cursor_goto_first_child(&c)) continue;
    int more = 1;
    while (!ts_tree_cursor_goto_next_sibling(&c)) {
      if (!ts_tree_cursor_goto_parent(&c)) {
        more = 0;
        break;
      }
    }
    if (!more) break;
  }
  ts_tree_cursor_delete(&c);
  ts_tree_delete(tree);
  if (!ok) return js_fail(env, "parse: out of memory");
  s->out[0] = errors;
  void *data;
  napi_value ab, result;
  if (napi_create_arraybuffer(env, n * sizeof(int32_t), &data, &ab) != napi_ok) return NULL;
  memcpy(data, s->out, n * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, n, ab, 0, &result);
  return result;
}

// parseOnly(language, utf8 bytes): the parse alone, for the benchmark's baseline.
static napi_value parse_only(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const TSLanguage *lang;
  void *src;
  size_t len;
  if (argc < 2 || !get_language(env, argv[0], &lang)) return js_fail(env, "parseOnly: expected a tree-sitter language");
  if (!js_typed(env, argv[1], napi_uint8_array, &src, &len)) return js_fail(env, "parseOnly: expected a Uint8Array");
  State *s = state_of(env);
  if (!s || !s->parser) return js_fail(env, "parseOnly: out of memory");
  if (s->language != lang) {
    if (!ts_parser_set_language(s->parser, lang)) return js_fail(env, "parseOnly: incompatible tree-sitter language version");
    s->language = lang;
  }
  TSTree *tree = ts_parser_parse_string_encoding(s->parser, NULL, (const char *)src, (uint32_t)len, TSInputEncodingUTF8);
  napi_value r;
  napi_get_boolean(env, tree != NULL, &r);
  if (tree) ts_tree_delete(tree);
  return r;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"symbols", NULL, symbols, NULL, NULL, NULL, napi_default, NULL},
      {"parse", NULL, parse, NULL, NULL, NULL, napi_default, NULL},
      {"parseOnly", NULL, parse_only, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  sdt_bpe_register(env, exports);
  sdt_minhash_register(env, exports);
  sdt_spans_register(env, exports);
  sdt_text_register(env, exports);
  return exports;
}
