// The data build's MinHash signature (minhash.c), registered on the addon's exports by ts_spans.c.
#pragma once
#include <node_api.h>

void sdt_minhash_register(napi_env env, napi_value exports);
