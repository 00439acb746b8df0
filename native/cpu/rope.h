// Rotary position embedding on the CPU (native/ops/rope.cpp makes inv_freq and dispatches).
#pragma once
#include <cstdint>
#include <vector>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// inv_freq and the position scale, from the rope_scaling attributes.
struct RopeParams {
  std::vector<double> invFreq;  // [D/2], scaling applied
  double positionScale = 1.0;   // 'linear': positions are divided by the factor
  bool inverse = false;
};

// out = x rotated at positionIds (the inverse rotation when p.inverse).
void rope(const Tensor& x, const Tensor& positions, const RopeParams& p, const Tensor& out);

}  // namespace seqtune::cpu
