// `sdt-native score` (dispatched from native/src/main.cpp when this header exists).
#pragma once

namespace sdt::score {

int cmd_score(int argc, char** argv);

}  // namespace sdt::score
