#include "native/runtime/device.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/common/errors.h"

namespace seqtune {

MemoryStats Device::memoryStats() const {
  MemoryStats stats;
  stats.bytesInUse = inUse_.load();
  stats.peakBytes = peak_.load();
  stats.bytesReserved = isCuda() ? reserved_.load() : stats.bytesInUse;
  return stats;
}

void Device::resetPeak() { peak_.store(inUse_.load()); }

void Device::recordAlloc(size_t bytes) {
  size_t now = inUse_.fetch_add(bytes) + bytes;
  size_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

void Device::recordFree(size_t bytes) { inUse_.fetch_sub(bytes); }

size_t cpuAllocationLimit() {
  static const size_t limit = [] {
    if (const char* env = std::getenv("SEQTUNE_CPU_MAX_ALLOC_BYTES")) return static_cast<size_t>(std::strtoull(env, nullptr, 10));
    return static_cast<size_t>(64) << 30;  // 64 GiB
  }();
  return limit;
}

void* CpuDevice::allocate(size_t bytes) {
  if (bytes > cpuAllocationLimit()) {
    fail(code::kOutOfMemory, "cannot allocate ", bytes, " bytes on cpu: above the single-allocation limit of ",
         cpuAllocationLimit(), " bytes (", memoryStats().bytesInUse,
         " bytes in use); use a smaller batch or set SEQTUNE_CPU_MAX_ALLOC_BYTES");
  }
  size_t rounded = ((bytes + 63) / 64) * 64;
  void* ptr = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!ptr) {
    fail(code::kOutOfMemory, "out of host memory allocating ", bytes, " bytes on cpu (", memoryStats().bytesInUse,
         " bytes in use)");
  }
  recordAlloc(bytes);
  return ptr;
}

void CpuDevice::deallocate(void* ptr, size_t bytes) {
  std::free(ptr);
  recordFree(bytes);
}

void CpuDevice::copyToHost(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuDevice::copyFromHost(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

Device* cpuDevice() {
  // Never destroyed: storage freed during process teardown may still reference it.
  static CpuDevice* device = new CpuDevice();
  return device;
}

Device* deviceByName(const std::string& name) {
  if (name == "cpu") return cpuDevice();
  if (name.rfind("cuda:", 0) == 0) {
    char* end = nullptr;
    long index = std::strtol(name.c_str() + 5, &end, 10);
    if (end && *end == '\0' && end != name.c_str() + 5 && index >= 0) return cudaDevice(static_cast<int>(index));
  }
  fail(code::kDevice, "unknown device '", name, "': expected 'cpu' or 'cuda:N'");
}

}  // namespace seqtune
