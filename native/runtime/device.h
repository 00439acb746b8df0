// Devices: where storage lives and where ops run. The CPU device always exists; CUDA devices are
// created by native/runtime/cuda_device.cu when the addon was compiled with CUDA and a usable GPU is found.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kernels/hopper/kernel_states.h"
#include "native/runtime/executor.h"

namespace seqtune {

struct MemoryStats {
  size_t bytesInUse = 0;     // live tensors
  size_t peakBytes = 0;      // high-water mark of bytesInUse since the last reset
  size_t bytesReserved = 0;  // held by the caching allocator (CUDA), including free blocks
};

class Device {
 public:
  explicit Device(std::string name) : name_(name), executor_(name) {}
  virtual ~Device() = default;

  const std::string& name() const { return name_; }
  virtual bool isCuda() const = 0;
  Executor& executor() { return executor_; }

  // Called on the JS thread when a tensor is created; throws Error(ERR_OUT_OF_MEMORY) with the
  // bytes asked for and in use.
  virtual void* allocate(size_t bytes) = 0;
  // May run on any thread (the last reference may be dropped by the device thread).
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  // Device-thread copies between this device's memory and host memory.
  virtual void copyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual void copyFromHost(void* dst, const void* src, size_t bytes) = 0;
  // Device-thread: wait until everything launched has finished (CUDA); no-op on CPU.
  virtual void synchronize() {}

  MemoryStats memoryStats() const;
  void resetPeak();

 protected:
  void recordAlloc(size_t bytes);
  void recordFree(size_t bytes);
  std::atomic<size_t> reserved_{0};

 private:
  std::string name_;
  std::atomic<size_t> inUse_{0};
  std::atomic<size_t> peak_{0};
  Executor executor_;
};

class CpuDevice final : public Device {
 public:
  CpuDevice() : Device("cpu") {}
  bool isCuda() const override { return false; }
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void copyFromHost(void* dst, const void* src, size_t bytes) override;
};

// The largest single host allocation we attempt; anything above is refused with a clear error
// rather than handed to the OS (which may overcommit and kill the process later).
size_t cpuAllocationLimit();

Device* cpuDevice();

struct GpuInfo {
  int index = 0;
  std::string name;
  size_t totalMemory = 0;
  int major = 0;
  int minor = 0;
  bool usable = false;
  std::string reason;  // why not usable
};

struct CudaStatus {
  bool compiled = false;        // the addon contains CUDA kernels
  std::string architectures;    // as compiled, e.g. "80-real,80-virtual,90a-real"
  int runtimeVersion = 0;       // CUDA runtime linked in (e.g. 13000)
  int driverVersion = 0;        // 0 when no driver
  std::string reason;           // why no GPU is usable, empty when one is
  std::vector<GpuInfo> gpus;
};

// Implemented in native/runtime/cuda_device.cu, or by the CPU-only stub in native/runtime/cuda_stub.cpp.
CudaStatus cudaStatus();

// Bytes free on usable GPU `index` now (cudaMemGetInfo; read on every call, unlike cudaStatus).
// It starts the device's CUDA context if none runs yet. Fails (kDevice) for a GPU that cannot be
// used, and always without CUDA. Same two implementations as cudaStatus.
size_t gpuFreeMemory(int index);

// Throws Error(ERR_DEVICE) naming why when the GPU cannot be used.
Device* cudaDevice(int index);

Device* deviceByName(const std::string& name);

}  // namespace seqtune
