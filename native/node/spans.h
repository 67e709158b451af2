// Node byte ranges to token ranges (spans.c), registered on the addon's exports by ts_spans.c.
#pragma once
#include <node_api.h>

void sdt_spans_register(napi_env env, napi_value exports);
