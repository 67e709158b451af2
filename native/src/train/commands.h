// The sdt-native subcommands owned by the training side (dispatched from native/src/main.cpp).
// Each returns the process exit code; see docs/native.md.
#pragma once

namespace sdt::train {

int cmd_train(int argc, char** argv);
int cmd_init(int argc, char** argv);
int cmd_forward(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_stream_check(int argc, char** argv);
int cmd_bench_train(int argc, char** argv);

}  // namespace sdt::train
