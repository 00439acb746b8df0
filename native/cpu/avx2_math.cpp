#include "native/cpu/avx2_math.h"

#include <cstdlib>
#include <cstring>

namespace seqtune::cpu {

bool avx2Enabled() {
#ifdef SEQTUNE_CPU_X86
  static const bool allowed = [] {
    const char* env = std::getenv("SEQTUNE_CPU_SIMD");
    if (env && std::strcmp(env, "0") == 0) return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return allowed;
#else
  return false;
#endif
}

}  // namespace seqtune::cpu
