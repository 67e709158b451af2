// UTF-16 length, control characters and line lengths of UTF-8 text (text.c), registered by ts_spans.c.
#pragma once
#include <node_api.h>

void sdt_text_register(napi_env env, napi_value exports);
