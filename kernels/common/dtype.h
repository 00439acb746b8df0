// Element types and the bf16/f16 <-> f32 conversions the CPU backend uses to compute in f32.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace seqtune {

enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, F64 = 4 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::F64: return 8;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I32: return "i32";
    case DType::F64: return "f64";
  }
  return "?";
}

// Returns false for an unknown name.
bool parseDtype(const std::string& name, DType* out);

inline bool isFloating(DType t) { return t != DType::I32; }
inline bool isHalf(DType t) { return t == DType::BF16 || t == DType::F16; }

inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, NaN kept quiet (as torch and CUDA's __float2bfloat16 do).
inline uint16_t floatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float f16ToFloat(uint16_t h);
uint16_t floatToF16(float f);

}  // namespace seqtune
