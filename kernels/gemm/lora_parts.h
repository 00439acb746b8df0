// How LoRA's rank-r terms reach 16-bit tensor-core products without losing the f32 precision the
// CPU keeps (kernels/gemm/lora.cu). An f32 value v is carried as hi = round16(v) and lo =
// round16(v - hi): hi + lo holds about twice the 16-bit mantissa (2^-17 relative for bf16). The
// rank-r product u·vᵀ (u = s·xa or dxa, v = B or A) then runs over `count` column blocks of r:
//   v exact in 16 bits (adapters in x's dtype): [u_hi | u_lo] · [v | v]
//   v f32:                                      [u_hi | u_lo | u_hi] · [v_hi | v_hi | v_lo]
// leaving out only u_lo·v_lo (2^-18 relative for bf16). One 16-bit copy of u, as before, was off
// by up to 2^-9 relative, which shows as several bf16 ulps of y where the rank-r term nearly
// cancels the base product (issue 15's parity failure). u's blocks start hi, lo: the first 2r
// columns are hi and lo, which the backward's dA = (hi + lo)ᵀ·drop(x) reads alone.
// Plain code, so test/kernels/lora_parts.cpp checks the same functions on the host.
#pragma once
#include "kernels/gemm/gemm_layout.h"

namespace seqtune::gemm {

// count column blocks; bit p of uLo / vLo set: block p of u / v holds lo, else hi.
struct LoraParts {
  int count;
  unsigned uLo, vLo;
};

constexpr GEMM_HD LoraParts loraParts(bool vExact) {
  return vExact ? LoraParts{2, 0b10u, 0b00u} : LoraParts{3, 0b010u, 0b100u};
}

// One 16-bit value per block: the plain rounding, as a copy without a split stores it.
constexpr LoraParts kSinglePart{1, 0u, 0u};

// Part p of v under loMask; round: v to the nearest 16-bit value, as a float.
template <class Round>
GEMM_HD float partOf(float v, int p, unsigned loMask, const Round& round) {
  const float hi = round(v);
  return ((loMask >> p) & 1u) != 0 ? round(v - hi) : hi;
}

// Where part p of element (r, c) of a [rows, cols] matrix goes, row stride ld: column blocks
// ([rows, count·cols]: u, and B in the forward) or row blocks ([count·rows, cols]: A in the backward).
constexpr GEMM_HD int64_t partIndex(int64_t r, int64_t c, int p, int64_t rows, int64_t cols, int64_t ld,
                                    bool rowBlocks) {
  return rowBlocks ? (p * rows + r) * ld + c : r * ld + p * cols + c;
}

}  // namespace seqtune::gemm
