// The documents' definitions the Hopper layout tests check kernels against, written out
// independently of kernels/hopper/hopper_layout.h (shared by gemm_hopper_layout.cpp and
// attention_hopper_layout.cpp):
// - the 128-byte swizzle as CUTLASS's Swizzle<3,4,3> (cute/swizzle.hpp);
// - the wgmma descriptor fields and the canonical K-major / MN-major 128B layouts (PTX ISA,
//   "Matrix Descriptor Format", "Canonical Layouts");
// - TMA's tiled mode: a box lands row-major (innermost dimension fastest) at the destination,
//   swizzled, elements outside the tensor zero (CUDA driver API, cuTensorMapEncodeTiled).
#pragma once
#include <cstdint>
#include <vector>

namespace hopper_models {

// Swizzle<B=3, M=4, S=3>: the 3 bits at [M + S, M + S + B) = [7, 10) XORed into [M, M + B) = [4, 7).
inline uint32_t cuteSwizzle343(uint32_t offset) {
  const uint32_t yyy = ((1u << 3) - 1) << (4 + 3);
  return offset ^ ((offset & yyy) >> 3);
}

struct Desc {
  uint32_t start, lbo, sbo, baseOffset, mode;
};

// Bits 0-13 start >> 4, 16-29 LBO >> 4, 32-45 SBO >> 4, 49-51 base offset, 62-63 swizzle mode.
inline Desc decode(uint64_t d) {
  return {static_cast<uint32_t>(d & 0x3fff) << 4, static_cast<uint32_t>((d >> 16) & 0x3fff) << 4,
          static_cast<uint32_t>((d >> 32) & 0x3fff) << 4, static_cast<uint32_t>((d >> 49) & 7),
          static_cast<uint32_t>(d >> 62)};
}

// Where wgmma reads element (mn, k) (k < 16) of the operand a descriptor describes. 16-bit
// elements: T = 8 per 16 bytes. K-major 128B: ((8,m),(T,2k)):((8T,SBO),(1,T)); MN-major 128B:
// ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)); strides in elements except LBO/SBO in bytes; then the
// swizzle on the byte address.
inline uint32_t wgmmaAddress(const Desc& d, bool mnMajor, int mn, int k) {
  uint32_t offset;
  if (!mnMajor) {
    offset = (mn % 8) * 8 * 8 * 2 + (mn / 8) * d.sbo + (k % 8) * 2 + (k / 8) * 8 * 2;
  } else {
    offset = (mn % 8) * 2 + ((mn / 8) % 8) * 8 * 2 + (mn / 64) * d.lbo + (k % 8) * 8 * 8 * 2 + (k / 8) * d.sbo;
  }
  return cuteSwizzle343(d.start + offset);
}

// A rank-3 tensor of 16-bit elements as TMA sees it: dims innermost first, strides of dimensions
// 1 and 2 in bytes, the box extents.
struct TensorMap {
  uint64_t dims[3], strides[2];
  uint32_t box[3];
};

// TMA tiled load of the box at (c0, c1, c2) into shared memory at byte address dst; smem holds one
// value per 2-byte element (indexed by byte address / 2); swizzle false models a broken load.
template <typename V>
void tmaBox(std::vector<V>& smem, uint32_t dst, const std::vector<V>& data, const TensorMap& g, int64_t c0, int64_t c1,
            int64_t c2, bool swizzle = true) {
  uint32_t i = 0;
  for (uint32_t i2 = 0; i2 < g.box[2]; ++i2) {
    for (uint32_t i1 = 0; i1 < g.box[1]; ++i1) {
      for (uint32_t i0 = 0; i0 < g.box[0]; ++i0, ++i) {
        const int64_t x0 = c0 + i0, x1 = c1 + i1, x2 = c2 + i2;
        V v = 0;
        if (x0 >= 0 && x1 >= 0 && x2 >= 0 && static_cast<uint64_t>(x0) < g.dims[0] &&
            static_cast<uint64_t>(x1) < g.dims[1] && static_cast<uint64_t>(x2) < g.dims[2]) {
          const uint64_t element =
              static_cast<uint64_t>(x0) + static_cast<uint64_t>(x1) * (g.strides[0] / 2) + static_cast<uint64_t>(x2) * (g.strides[1] / 2);
          v = data[static_cast<size_t>(element)];
        }
        const uint32_t linear = dst + i * 2;
        smem[(swizzle ? cuteSwizzle343(linear) : linear) / 2] = v;
      }
    }
  }
}

}  // namespace hopper_models
