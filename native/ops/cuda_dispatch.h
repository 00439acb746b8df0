// What the op builders' CUDA paths share: scratch device memory sized in bytes, host-made tables
// uploaded by the launch, and the index check after a launcher that gathers by int32 indices.
// Everything here is allocated in the builder (JS thread) and captured by the launch closure
// (device thread). A scratch block returns to the device's cache when the task has launched; it is
// only reused by later work on the same in-order stream, so the kernels reading it finish first.
#pragma once
#ifdef SEQTUNE_CUDA
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "native/runtime/cuda_device.h"
#include "kernels/common/index_check.h"
#include "native/ops/op_util.h"

namespace seqtune {

// Device memory of at least `bytes` bytes, 8-byte aligned (one f64 element when bytes is 0).
inline TensorPtr scratchBytes(Device* device, size_t bytes) {
  const int64_t words = static_cast<int64_t>((bytes + sizeof(double) - 1) / sizeof(double));
  return Tensor::empty(device, {words > 0 ? words : 1}, DType::F64);
}

// A host array filled in the builder and device memory to hold it; upload() (device thread) queues
// the copy on the stream ahead of the kernel that reads it and returns the device copy.
template <typename T>
struct DeviceTable {
  static_assert(std::is_trivially_copyable_v<T>, "uploaded byte for byte");
  std::vector<T> host;
  TensorPtr storage;

  DeviceTable(Device* device, std::vector<T> entries)
      : host(std::move(entries)), storage(scratchBytes(device, host.size() * sizeof(T))) {}
  int count() const { return static_cast<int>(host.size()); }
  // Device::copyFromHost stages the bytes before it returns, so `host` may go away afterwards.
  const T* upload() const {
    storage->device()->copyFromHost(storage->raw(), host.data(), host.size() * sizeof(T));
    return static_cast<const T*>(storage->raw());
  }
};

// The int flag an index-checked launcher sets (kernels/common/index_check.h) for `indices` (int32, on the
// call's device). The constructor (builder) refuses more indices than the check can name (2^31).
class IndexCheck {
 public:
  IndexCheck(const OpCall& call, TensorPtr indices, const char* name)
      : op_(call.op),
        indices_(std::move(indices)),
        flag_(Tensor::empty(call.device, {1}, DType::I32)),
        checkedOnHost_(call.attrs.flag("indicesChecked")) {
    if (indices_->numel() >= (int64_t(1) << 31)) {
      failShape(call, str(name, " holds ", indices_->numel(), " indices; cuda checks at most 2^31 - 1"));
    }
  }

  int* flag() const { return flag_->data<int>(); }

  // Device thread, right after the launch: waits for the stream. When the kernel flagged an index,
  // copies the indices to the host and runs the CPU backend's own check on them,
  // cpuCheck(const int32_t* hostIndices), which throws its ERR_INDEX message for the first bad one.
  // With the indicesChecked attribute (the caller checked them on the host) it does not wait: the
  // kernels skip bad indices either way, so memory stays safe.
  template <typename CpuCheck>
  void verify(cudaStream_t stream, CpuCheck&& cpuCheck) const {
    if (checkedOnHost_) return;
    const gpu::BadIndex bad = gpu::firstBadIndex(flag(), indices_->data<int32_t>(), indices_->numel(), stream);
    if (bad.position < 0) return;
    std::vector<int32_t> host(static_cast<size_t>(indices_->numel()));
    indices_->device()->copyToHost(host.data(), indices_->raw(), indices_->nbytes());
    cpuCheck(static_cast<const int32_t*>(host.data()));
    // Not reached while the CPU check agrees with the kernel's flag.
    fail(code::kIndex, op_, ": index ", bad.value, " at position ", bad.position, " is out of range");
  }

 private:
  const char* op_;
  TensorPtr indices_;
  TensorPtr flag_;
  bool checkedOnHost_;
};

}  // namespace seqtune
#endif  // SEQTUNE_CUDA
