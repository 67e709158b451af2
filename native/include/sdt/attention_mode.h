// Headers shared by the C++ sources (native/src) and the CUDA kernels (kernels/): the kernels include
// nothing from native/src, only from native/include.
#pragma once

namespace sdt {

// Which keys a query may attend to (before segment masking):
//   Bidirectional: every key of the same segment.
//   Causal:        keys whose position <= the query's position.
//   Block:         keys whose block (position / block_size) <= the query's block, i.e. causal
//                  between blocks and bidirectional inside a block.
//   BlockTwoStream: the training layout of a block model (never a checkpoint's mode). A row of
//                  T = 2L holds the noisy sequence in [0, L) and the clean one in [L, 2L), both at
//                  positions 0..L-1 (derived as t mod L when no position ids are given). A noisy
//                  query sees the noisy keys of its own block and the clean keys of earlier blocks;
//                  a clean query sees clean keys of its block and earlier ones. So every noisy
//                  block is predicted from a clean prefix, as when it is decoded, in one forward.
enum class AttentionMode { Bidirectional = 0, Causal = 1, Block = 2, BlockTwoStream = 3 };

}  // namespace sdt
