// Headers shared by the C++ sources (native/src) and the CUDA kernels (kernels/): the kernels include
// nothing from native/src, only from native/include.
#pragma once

namespace sdt {

// Which keys a query may attend to (before segment masking):
//   Bidirectional: every key of the same segment.
//   Causal:        keys whose position <= the query's position.
//   Block:         keys whose block (position / block_size) <= the query's block, i.e. causal
//                  between blocks and bidirectional inside a block.
enum class AttentionMode { Bidirectional = 0, Causal = 1, Block = 2 };

}  // namespace sdt
