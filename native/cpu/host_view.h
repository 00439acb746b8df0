// The CPU backend's typed views of tensors: f32 math over bf16/f16 storage, f64 for gradient checks.
#pragma once
#include <cstdint>
#include <vector>

#include "native/runtime/tensor.h"

namespace seqtune {

// Runs f(float{}) for f32/bf16/f16 and f(double{}) for f64: the CPU compute type.
template <typename F>
void withComputeType(DType dtype, F&& f) {
  if (dtype == DType::F64) {
    f(double{});
  } else {
    f(float{});
  }
}

// Converts n elements from `src` (of dtype `from`) to T, or T to `to`.
template <typename T>
void convertFrom(DType from, const void* src, T* dst, int64_t n);
template <typename T>
void convertTo(DType to, const T* src, void* dst, int64_t n);

// Read-only view of a CPU tensor as T: zero-copy when the dtype matches, else a converted copy.
template <typename T>
class HostIn {
 public:
  explicit HostIn(const Tensor& t);
  const T* data() const { return ptr_; }
  const T& operator[](int64_t i) const { return ptr_[i]; }

 private:
  std::vector<T> copy_;
  const T* ptr_;
};

// Writable view of a CPU tensor as T; commit() stores it back in the tensor's dtype.
// load = true starts from the tensor's current contents (in-place updates).
template <typename T>
class HostOut {
 public:
  HostOut(const Tensor& t, bool load);
  T* data() { return ptr_; }
  T& operator[](int64_t i) { return ptr_[i]; }
  void commit();

 private:
  const Tensor& tensor_;
  std::vector<T> copy_;
  T* ptr_;
};

}  // namespace seqtune
