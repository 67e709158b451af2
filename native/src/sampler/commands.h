// `sdt-native serve` and `sdt-native generate` (dispatched from native/src/main.cpp).
#pragma once

int cmd_serve(int argc, char** argv);
int cmd_generate(int argc, char** argv);
