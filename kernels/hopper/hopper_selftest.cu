// kernels/hopper/hopper_selftest.h: host helpers and the per-device gate of the Hopper self-tests.
#include "kernels/hopper/hopper_selftest.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/hopper/kernel_states.h"

namespace seqtune::gpu::selftest {

uint16_t toHalfBits(float v, DType t) { return t == DType::BF16 ? floatToBf16(v) : floatToF16(v); }

float fromHalfBits(uint16_t h, DType t) { return t == DType::BF16 ? bf16ToFloat(h) : f16ToFloat(h); }

DeviceArena::DeviceArena(size_t bytes) : error_(cudaMalloc(&base_, bytes)) {
  if (error_ != cudaSuccess) {
    cudaGetLastError();
    base_ = nullptr;
  }
}

DeviceArena::~DeviceArena() {
  if (base_) cudaFree(base_);
}

void* DeviceArena::take(size_t bytes) {
  void* p = static_cast<char*>(base_) + used_;
  used_ += (bytes + 255) / 256 * 256;
  return p;
}

bool isHopper(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;
}

namespace {

std::mutex& registryMutex() {
  static std::mutex m;
  return m;
}

std::vector<HopperGate*>& registry() {
  static std::vector<HopperGate*> gates;
  return gates;
}

bool disabled(const char* envVar) {
  const char* env = std::getenv(envVar);
  return env && std::strcmp(env, "0") == 0;
}

}  // namespace

HopperGate::HopperGate(const char* name, const char* envVar, const char* what, SelfTest selfTest)
    : name_(name), envVar_(envVar), what_(what), selfTest_(selfTest) {
  std::lock_guard<std::mutex> lock(registryMutex());
  registry().push_back(this);
}

std::string HopperGate::describe(int device) {
  if (disabled(envVar_)) return std::string("off: ") + envVar_ + "=0";
  const int s = states_[device & 63].load(std::memory_order_acquire);
  if (s == kUntested) return "untested";
  if (s == kOn) return "on";
  std::lock_guard<std::mutex> lock(testing_);
  return "off: " + (why_[device & 63].empty() ? std::string("self-test failed") : why_[device & 63]);
}

bool HopperGate::open(cudaStream_t stream) {
  if (disabled(envVar_)) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  std::atomic<int>& state = states_[device & 63];
  int s = state.load(std::memory_order_acquire);
  if (s == kUntested) {
    std::lock_guard<std::mutex> lock(testing_);
    s = state.load(std::memory_order_acquire);
    if (s == kUntested) {
      std::string detail;
      s = isHopper(device) && selfTest_(stream, &detail) ? kOn : kOff;
      why_[device & 63] = detail;
      if (!detail.empty()) {
        std::fprintf(stderr,
                     "seqtune: the Hopper (sm_90a) %s failed its self-test on GPU %d and stays off there; the "
                     "mma.sync kernels run instead. Please report this line to the seqtune maintainers: %s\n",
                     what_, device, detail.c_str());
      }
      state.store(s, std::memory_order_release);
    }
  }
  return s == kOn;
}

}  // namespace seqtune::gpu::selftest

namespace seqtune {

std::vector<KernelState> hopperKernelStates(int device) {
  std::vector<KernelState> out;
  if (!gpu::selftest::isHopper(device)) return out;
  std::lock_guard<std::mutex> lock(gpu::selftest::registryMutex());
  for (gpu::selftest::HopperGate* gate : gpu::selftest::registry()) out.push_back({gate->name(), gate->describe(device)});
  return out;
}

}  // namespace seqtune
