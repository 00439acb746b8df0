#include "kernels/common/dtype.h"

#include <cmath>

namespace seqtune {

bool parseDtype(const std::string& name, DType* out) {
  static const struct { const char* name; DType type; } kTable[] = {
      {"f32", DType::F32}, {"bf16", DType::BF16}, {"f16", DType::F16}, {"i32", DType::I32}, {"f64", DType::F64}};
  for (const auto& entry : kTable) {
    if (name == entry.name) {
      *out = entry.type;
      return true;
    }
  }
  return false;
}

float f16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: value = mantissa * 2^-24
      float f = std::ldexp(static_cast<float>(mantissa), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t floatToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t absBits = bits & 0x7fffffffu;
  if (absBits > 0x7f800000u) return sign | 0x7e00u;                 // NaN
  if (absBits >= 0x477ff000u) return sign | 0x7c00u;                // overflow to inf (rounds past 65504)
  if (absBits < 0x38800000u) {                                      // subnormal or zero in f16
    float a;
    std::memcpy(&a, &absBits, 4);
    const float scaled = a * 16777216.0f;                           // 2^24: units of the f16 subnormal step
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));    // round half to even (default mode)
  }
  uint32_t mantissa = absBits & 0x7fffffu;
  uint32_t exponent = (absBits >> 23) - 112;
  uint32_t half = (exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half += 1;  // may carry into the exponent: correct
  return sign | static_cast<uint16_t>(half);
}

}  // namespace seqtune
