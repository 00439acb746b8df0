// CUDA devices: discovery (cudaStatus) and one process-wide CudaDevice per GPU, with its stream, a
// caching allocator and host copies. Every op of a device runs in order on that one stream, so a
// block freed by a tensor can be handed to the next tensor at once: any kernel still reading it
// was launched earlier on the same stream and finishes before the new owner's kernels start.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/common/cuda_check.h"
#include "native/runtime/cuda_device.h"
#include "native/runtime/device.h"

namespace seqtune {

namespace {

// bf16 arithmetic and the kernels' sm_80 SASS need Ampere or newer.
constexpr int kMinMajor = 8;

// Size classes: 512 B steps up to 1 MiB, then 2 MiB steps (the GPU's large-page size), so that
// tensors of nearly the same size (varying sequence lengths) share cached blocks.
constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallStep = 512;
constexpr size_t kLargeStep = size_t(2) << 20;
// Host-to-device copies go through two pinned buffers of this size, alternated so that filling
// one overlaps the DMA out of the other.
constexpr size_t kStagingBytes = size_t(8) << 20;

std::string versionText(int v) { return str(v / 1000, ".", (v % 1000) / 10); }

size_t roundBlock(size_t bytes) {
  if (bytes <= kSmallLimit) return std::max(kSmallStep, (bytes + kSmallStep - 1) / kSmallStep * kSmallStep);
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

// The largest cached block a request of `block` bytes may take: small classes match exactly;
// a large request may take a block up to 1/8 bigger rather than allocate again.
size_t maxReuse(size_t block) { return block <= kSmallLimit ? block : block + block / 8; }

std::string deviceCountFailure(cudaError_t e, int driverVersion, int runtimeVersion) {
  if (e == cudaErrorNoDevice) return "no CUDA device found";
  if (e == cudaErrorInsufficientDriver) {
    if (driverVersion == 0) {
      return "no NVIDIA driver is installed (libcuda.so could not be loaded); install the NVIDIA driver for your GPU";
    }
    return str("the NVIDIA driver (version ", versionText(driverVersion), ") is older than this build's CUDA runtime ",
               versionText(runtimeVersion), " needs; update the driver");
  }
  return str("cudaGetDeviceCount: ", cudaGetErrorString(e));
}

CudaStatus probe() {
  CudaStatus s;
  s.compiled = true;
  s.architectures = SEQTUNE_CUDA_ARCHS;
  cudaRuntimeGetVersion(&s.runtimeVersion);
  if (cudaDriverGetVersion(&s.driverVersion) != cudaSuccess) s.driverVersion = 0;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    s.reason = deviceCountFailure(e, s.driverVersion, s.runtimeVersion);
    return s;
  }
  if (count == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  std::string unusable;
  bool anyUsable = false;
  for (int i = 0; i < count; ++i) {
    GpuInfo g;
    g.index = i;
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) {
      cudaGetLastError();
      g.reason = str("cudaGetDeviceProperties: ", cudaGetErrorString(e));
    } else {
      g.name = prop.name;
      g.totalMemory = prop.totalGlobalMem;
      g.major = prop.major;
      g.minor = prop.minor;
      g.usable = prop.major >= kMinMajor;
      if (!g.usable) {
        g.reason = str("compute capability ", prop.major, ".", prop.minor, " is below 8.0: seqtune's CUDA kernels need ",
                       "an Ampere (sm_80) or newer GPU");
      }
    }
    anyUsable = anyUsable || g.usable;
    if (!g.usable) unusable += str(unusable.empty() ? "" : "; ", "cuda:", i, g.name.empty() ? "" : " (" + g.name + ")", ": ", g.reason);
    s.gpus.push_back(g);
  }
  if (!anyUsable) s.reason = "no usable GPU: " + unusable;
  return s;
}

// Probed once: driver loading and device enumeration do not change while the process runs.
const CudaStatus& status() {
  static const CudaStatus s = probe();
  return s;
}

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int index) : Device(str("cuda:", index)), index_(index) {
    cudaCheck(cudaSetDevice(index), "cudaSetDevice");
    // Non-blocking: no implicit ordering with the legacy default stream that other libraries use.
    cudaCheck(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    executor().setThreadInit([index] { cudaSetDevice(index); });
  }

  bool isCuda() const override { return true; }
  cudaStream_t stream() const { return stream_; }

  void* allocate(size_t bytes) override {
    const size_t block = roundBlock(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* ptr = takeCached(block);
    if (!ptr) ptr = allocateBlock(block, bytes);
    recordAlloc(bytes);
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(ptr);
    if (it != blocks_.end()) free_.emplace(it->second, ptr);
    recordFree(bytes);
  }

  void copyToHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "copyToHost: cudaMemcpyAsync");
    cudaCheck(cudaStreamSynchronize(stream_), "copyToHost: cudaStreamSynchronize");
  }

  // The source may be freed as soon as this returns: it is first copied into pinned staging.
  void copyFromHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    ensureStaging();
    const char* from = static_cast<const char*>(src);
    char* to = static_cast<char*>(dst);
    int k = 0;
    for (size_t done = 0; done < bytes; done += kStagingBytes, k ^= 1) {
      const size_t chunk = std::min(kStagingBytes, bytes - done);
      cudaCheck(cudaEventSynchronize(stagingFree_[k]), "copyFromHost: cudaEventSynchronize");
      std::memcpy(staging_[k], from + done, chunk);
      cudaCheck(cudaMemcpyAsync(to + done, staging_[k], chunk, cudaMemcpyHostToDevice, stream_),
                "copyFromHost: cudaMemcpyAsync");
      cudaCheck(cudaEventRecord(stagingFree_[k], stream_), "copyFromHost: cudaEventRecord");
    }
  }

  void synchronize() override { cudaCheck(cudaStreamSynchronize(stream_), (name() + ": synchronize").c_str()); }

 private:
  void* takeCached(size_t block) {
    auto it = free_.lower_bound(block);
    if (it == free_.end() || it->first > maxReuse(block)) return nullptr;
    void* ptr = it->second;
    free_.erase(it);
    return ptr;
  }

  // Called with mutex_ held, on the JS thread (whose current device may be another GPU).
  void* allocateBlock(size_t block, size_t bytes) {
    cudaCheck(cudaSetDevice(index_), "cudaSetDevice");
    void* ptr = nullptr;
    cudaError_t e = cudaMalloc(&ptr, block);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      releaseCache();
      e = cudaMalloc(&ptr, block);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t freeBytes = 0, totalBytes = 0;
      cudaMemGetInfo(&freeBytes, &totalBytes);
      cudaGetLastError();
      fail(code::kOutOfMemory, name(), ": out of memory allocating ", bytes, " bytes (", memoryStats().bytesInUse,
           " in use by tensors, ", reserved_.load(), " reserved by the cache, ", freeBytes,
           " free on the device); use a smaller batch or sequence length, LoRA instead of full fine-tuning, or "
           "activation checkpointing");
    }
    cudaCheck(e, "cudaMalloc");
    blocks_.emplace(ptr, block);
    reserved_ += block;
    return ptr;
  }

  // Returns every cached free block to the driver. Kernels launched before a block was freed may
  // still be reading it, so wait for the stream first.
  void releaseCache() {
    if (free_.empty()) return;
    cudaCheck(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (releasing cached blocks)");
    for (const auto& [size, ptr] : free_) {
      cudaCheck(cudaFree(ptr), "cudaFree");
      blocks_.erase(ptr);
      reserved_ -= size;
    }
    free_.clear();
  }

  // Device thread only (copyFromHost), so no lock.
  void ensureStaging() {
    if (staging_[0]) return;
    for (int k = 0; k < 2; ++k) {
      cudaCheck(cudaMallocHost(&staging_[k], kStagingBytes), "cudaMallocHost (pinned staging for host copies)");
      cudaCheck(cudaEventCreateWithFlags(&stagingFree_[k], cudaEventDisableTiming), "cudaEventCreateWithFlags");
    }
  }

  int index_;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<void*, size_t> blocks_;  // every block held, in use or cached, with its size
  std::multimap<size_t, void*> free_;         // cached blocks by size
  void* staging_[2] = {nullptr, nullptr};
  cudaEvent_t stagingFree_[2] = {nullptr, nullptr};
};

}  // namespace

CudaStatus cudaStatus() { return status(); }

Device* cudaDevice(int index) {
  const CudaStatus& s = status();
  const int count = static_cast<int>(s.gpus.size());
  if (index < 0 || index >= count) {
    if (count == 0) fail(code::kDevice, "cuda:", index, " is not available: ", s.reason);
    fail(code::kDevice, "cuda:", index, " does not exist: this machine has ", count, " CUDA device", count == 1 ? "" : "s",
         " (cuda:0", count > 1 ? str("..cuda:", count - 1) : "", ")");
  }
  const GpuInfo& gpu = s.gpus[static_cast<size_t>(index)];
  if (!gpu.usable) fail(code::kDevice, "cuda:", index, " (", gpu.name, ") cannot be used: ", gpu.reason);
  // Never destroyed, like the CPU device: tensors released during process teardown still call
  // deallocate, and CUDA calls from static destructors would run after the runtime unloads.
  static std::mutex mutex;
  static auto* devices = new std::vector<CudaDevice*>(static_cast<size_t>(count), nullptr);
  std::lock_guard<std::mutex> lock(mutex);
  CudaDevice*& device = (*devices)[static_cast<size_t>(index)];
  if (!device) device = new CudaDevice(index);
  return device;
}

size_t gpuFreeMemory(int index) {
  const CudaStatus& s = status();
  if (index < 0 || index >= static_cast<int>(s.gpus.size()) || !s.gpus[static_cast<size_t>(index)].usable) {
    fail(code::kDevice, "cuda:", index, " is not a usable GPU", s.reason.empty() ? "" : ": " + s.reason);
  }
  // The calling thread's current device is restored: callers may be mid-way through work on another.
  int previous = 0;
  cudaCheck(cudaGetDevice(&previous), "cudaGetDevice");
  cudaCheck(cudaSetDevice(index), "cudaSetDevice");
  size_t freeBytes = 0;
  size_t totalBytes = 0;
  const cudaError_t e = cudaMemGetInfo(&freeBytes, &totalBytes);
  cudaSetDevice(previous);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(code::kDevice, "cuda:", index, ": cudaMemGetInfo: ", cudaGetErrorString(e));
  }
  return freeBytes;
}

cudaStream_t streamOf(Device* device) {
  if (!device->isCuda()) fail(code::kDevice, "streamOf: ", device->name(), " is not a CUDA device");
  return static_cast<CudaDevice*>(device)->stream();
}

}  // namespace seqtune
