// What the Hopper kernels' one-time self-tests share (gemm_hopper_selftest.cu,
// flash_attention_hopper_selftest.cu): the kernels were written without a GPU to run them on, so a
// device only uses one after it reproduced the Ampere-path kernel and a float64 host reference on
// fixed problems. Host code: 16-bit values on the host, a scratch device arena, and the per-device
// gate that runs a self-test once and remembers the verdict.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "kernels/common/dtype.h"

namespace seqtune::gpu::selftest {

// bf16 or f16 bits of v (kernels/common/dtype.h's rounding), and back.
uint16_t toHalfBits(float v, DType t);
float fromHalfBits(uint16_t h, DType t);

// splitmix64: values k/64, k in [-64, 64] (exact in bf16 and f16; their products and sums of up to
// 2^10 of them are exact in f32).
struct Rng {
  uint64_t s;
  float next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<float>(static_cast<int>(z % 129) - 64) / 64.f;
  }
};

// One device allocation carved into 256-byte aligned pieces.
class DeviceArena {
 public:
  explicit DeviceArena(size_t bytes);
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  cudaError_t error() const { return error_; }
  void* take(size_t bytes);

 private:
  void* base_ = nullptr;
  cudaError_t error_;
  size_t used_ = 0;
};

bool isHopper(int device);

// Runs problem(i) for i < count on the current device, which must have compute capability 9.0;
// false with the first failure (or why it did not run) in *detail. problem returns "" when its
// results match.
template <class Problem>
bool runSelfTest(size_t count, Problem&& problem, std::string* detail) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || !isHopper(device)) {
    cudaGetLastError();
    if (detail) *detail = "not a compute capability 9.0 device";
    return false;
  }
  for (size_t i = 0; i < count; ++i) {
    const std::string failure = problem(i);
    if (!failure.empty()) {
      if (detail) *detail = failure;
      return false;
    }
  }
  return true;
}

// Whether a Hopper kernel may run on the current device: the environment variable `envVar` is not
// "0", the device has compute capability 9.0, and `selfTest` passed there. The first call per
// device runs the self-test on `stream`; a failure leaves the kernel off for that device and
// writes one line to stderr naming `what` and the reason.
// Gates are namespace-scope objects: each registers itself for hopperKernelStates
// (native/runtime/device.h), which reports `name` and the state on a device.
class HopperGate {
 public:
  using SelfTest = bool (*)(cudaStream_t, std::string*);
  HopperGate(const char* name, const char* envVar, const char* what, SelfTest selfTest);
  bool open(cudaStream_t stream);
  const char* name() const { return name_; }
  // "untested", "on", "off: <why>" on `device`, "off: <envVar>=0" when disabled.
  std::string describe(int device);

 private:
  enum State : int { kUntested = 0, kOn = 1, kOff = 2 };
  const char* name_;
  const char* envVar_;
  const char* what_;
  SelfTest selfTest_;
  std::atomic<int> states_[64] = {};
  std::string why_[64];  // the self-test's failure, under testing_
  std::mutex testing_;
};

}  // namespace seqtune::gpu::selftest
