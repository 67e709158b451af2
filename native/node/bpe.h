// The data build's BPE encoder (bpe.c), registered on the addon's exports by ts_spans.c.
#pragma once
#include <node_api.h>

void sdt_bpe_register(napi_env env, napi_value exports);
