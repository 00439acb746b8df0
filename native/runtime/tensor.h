// Tensors: a contiguous view (byte offset, shape, dtype) into reference-counted device storage.
// Queued work holds shared_ptrs to the storage it touches, so dispose() from JS never frees memory
// that an op still waiting in a device queue will read or write.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"

namespace seqtune {

class Device;

// Why a tensor's contents are invalid: the op that failed and its error, carried forward to every
// tensor computed from it so the next read reports the original cause.
struct Poison {
  std::string code;
  std::string message;
};

class Storage {
 public:
  Storage(Device* device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device* device() const { return device_; }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  std::shared_ptr<const Poison> poison() const;
  void setPoison(std::shared_ptr<const Poison> poison);

 private:
  Device* device_;
  void* data_;
  size_t bytes_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Poison> poison_;
};

using Shape = std::vector<int64_t>;
std::string shapeString(const Shape& shape);
int64_t shapeNumel(const Shape& shape);

class Tensor {
 public:
  Tensor(std::shared_ptr<Storage> storage, size_t byteOffset, Shape shape, DType dtype);

  // Allocates fresh, uninitialised storage on the device.
  static std::shared_ptr<Tensor> empty(Device* device, const Shape& shape, DType dtype);

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  Device* device() const { return storage_->device(); }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtypeSize(dtype_); }
  size_t byteOffset() const { return byteOffset_; }
  void* raw() const { return static_cast<char*>(storage_->data()) + byteOffset_; }
  template <typename T>
  T* data() const { return reinterpret_cast<T*>(raw()); }
  std::string describe() const;  // e.g. "f32[3,4] on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t byteOffset_;
  Shape shape_;
  DType dtype_;
  int64_t numel_;
};

using TensorPtr = std::shared_ptr<Tensor>;

}  // namespace seqtune
