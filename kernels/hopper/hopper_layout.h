// What every Hopper (sm_90a) kernel of seqtune shares about shared memory: the 128-byte swizzle
// that TMA writes and wgmma reads, and the wgmma shared-memory matrix descriptor. Plain
// __host__ __device__ code, so the host tests (test/kernels/*hopper*) check the very functions the
// kernels call. Operands are 16-bit; a swizzled row is 128 bytes (64 elements), and the pattern
// repeats every 8 rows (1024 bytes), so every box and tile starts on a 1024-byte boundary.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define HOPPER_HD __host__ __device__ __forceinline__
#else
#define HOPPER_HD inline
#endif

namespace seqtune::hopper {

constexpr int kElemBytes = 2;
constexpr int kRowBytes = 128;  // one swizzle row
constexpr int kRowElems = kRowBytes / kElemBytes;
constexpr int kAtomBytes = 1024;  // 8 rows: where the swizzle pattern repeats
constexpr int kMmaK = 16;         // K of one wgmma.m64nNk16

// CU_TENSOR_MAP_SWIZZLE_128B / wgmma's 128B mode on a shared-memory byte address: the 16-byte chunk
// (bits 4-6) is XORed with the 128-byte row within the 1024-byte atom (bits 7-9).
constexpr HOPPER_HD uint32_t swizzle128(uint32_t address) { return address ^ (((address >> 7) & 7u) << 4); }

// The 64-bit shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format"): start address,
// leading and stride byte offsets, each >> 4 in 14 bits; base offset 0 (every pattern starts on a
// 1024-byte boundary); bits 62-63 = 1: 128-byte swizzle.
constexpr uint64_t kSwizzle128Mode = 1;

constexpr HOPPER_HD uint64_t encodeDesc(uint32_t start, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((start & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32) | (kSwizzle128Mode << 62);
}

// Canonical 128B-swizzled layouts (PTX ISA, "Major-ness supported by strides"): a K-major operand
// is rows of 64 K-elements, 8-row groups SBO = 1024 bytes apart (LBO unused: 16); an MN-major one
// is rows of 64 MN-elements per K, 8-K-row groups SBO = 1024 apart and the next 64 MN-elements LBO
// bytes further. A K-step (16 elements) moves a K-major start 32 bytes along the row (the hardware
// swizzles the final address, as TMA did) and an MN-major start 16 rows = 2 atoms down.
constexpr uint32_t kKMajorLbo = 16;
constexpr uint32_t kSbo = kAtomBytes;
constexpr HOPPER_HD uint32_t kMajorStep(int s) { return static_cast<uint32_t>(s * kMmaK * kElemBytes); }
constexpr HOPPER_HD uint32_t mnMajorStep(int s) { return static_cast<uint32_t>(s * kMmaK * kRowBytes); }

}  // namespace seqtune::hopper
