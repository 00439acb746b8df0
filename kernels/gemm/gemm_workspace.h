// Workspace bookkeeping shared by the launchers that compose GEMMs (lora.cu, linear_cross_entropy.cu).
#pragma once
#include <cstddef>
#include <cstdint>

namespace seqtune::gpu {

// (Named apart from kernel_util.cuh's aligned16 so a file may include both.)
inline bool isAligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Rows of 16-bit elements padded to whole 16-byte chunks (what cp.async copies).
inline int64_t pad8(int64_t n) { return (n + 7) / 8 * 8; }

// Hands out 256-byte aligned pieces of the caller's workspace. With a null base it only counts, so
// a launcher's size query and its launch share one layout function and cannot disagree.
class Carve {
 public:
  explicit Carve(void* base) : base_(static_cast<char*>(base)) {}
  void* take(size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = base_ ? base_ + used_ : nullptr;
    used_ += (bytes + 255) / 256 * 256;
    return p;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

}  // namespace seqtune::gpu
