// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), a counter-based
// generator: the value for element i of draw `offset` under `seed` is a pure function of the three,
// so CPU and GPU produce identical streams, any element can be regenerated (dropout's backward
// recomputes its mask), and the generator state to save is just (seed, offset).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace seqtune {

struct Philox4 {
  uint32_t v[4];
};

SEQTUNE_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  return static_cast<uint32_t>(product);
}

SEQTUNE_HD Philox4 philox(uint64_t seed, uint64_t counterLo, uint64_t counterHi) {
  uint32_t c0 = static_cast<uint32_t>(counterLo), c1 = static_cast<uint32_t>(counterLo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counterHi), c3 = static_cast<uint32_t>(counterHi >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in (0, 1]: never 0, so log() in Box-Muller is finite.
SEQTUNE_HD float uniformOpen(uint32_t bits) { return (static_cast<float>(bits >> 8) + 1.0f) * (1.0f / 16777216.0f); }

// Element `index` of draw `offset`: a uniform in (0, 1].
SEQTUNE_HD float philoxUniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return uniformOpen(philox(seed, index, offset).v[0]);
}

// Element `index` of draw `offset`: a standard normal (Box-Muller on two uniforms). Computed in
// double and rounded once, so CPU (glibc) and GPU (libdevice) results agree to the last f32 bit.
SEQTUNE_HD float philoxNormal(uint64_t seed, uint64_t offset, uint64_t index) {
  Philox4 r = philox(seed, index, offset);
  double u1 = uniformOpen(r.v[0]);
  double u2 = uniformOpen(r.v[1]);
  return static_cast<float>(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

}  // namespace seqtune

namespace seqtune {

// Dropout's keep decision for element i of draw (seed, offset): kept with probability 1 - p.
// Shared by the dropout op, the LoRA adapter's input dropout and their backwards (CPU and GPU).
SEQTUNE_HD bool dropoutKeep(uint64_t seed, uint64_t offset, uint64_t index, float p) {
  return philoxUniform(seed, offset, index) > p;
}

}  // namespace seqtune
