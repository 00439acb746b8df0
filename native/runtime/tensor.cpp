#include "native/runtime/tensor.h"

#include "native/runtime/device.h"
#include "kernels/common/errors.h"

namespace seqtune {

Storage::Storage(Device* device, size_t bytes) : device_(device), data_(nullptr), bytes_(bytes) {
  data_ = device->allocate(bytes);
}

Storage::~Storage() { device_->deallocate(data_, bytes_); }

std::shared_ptr<const Poison> Storage::poison() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return poison_;
}

void Storage::setPoison(std::shared_ptr<const Poison> poison) {
  std::lock_guard<std::mutex> lock(mutex_);
  poison_ = std::move(poison);
}

std::string shapeString(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int64_t shapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, size_t byteOffset, Shape shape, DType dtype)
    : storage_(std::move(storage)), byteOffset_(byteOffset), shape_(std::move(shape)), dtype_(dtype) {
  numel_ = shapeNumel(shape_);
}

std::shared_ptr<Tensor> Tensor::empty(Device* device, const Shape& shape, DType dtype) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(code::kShape, "negative dimension in shape ", shapeString(shape));
    // Guard the byte count against overflow before multiplying.
    if (d != 0 && numel > (int64_t(1) << 50) / d) {
      fail(code::kOutOfMemory, "cannot allocate a tensor of shape ", shapeString(shape), " (", dtypeName(dtype),
           "): more than 2^50 elements");
    }
    numel *= d;
  }
  auto storage = std::make_shared<Storage>(device, static_cast<size_t>(numel) * dtypeSize(dtype));
  return std::make_shared<Tensor>(std::move(storage), 0, shape, dtype);
}

std::string Tensor::describe() const {
  return str(dtypeName(dtype_), shapeString(shape_), " on ", device()->name());
}

}  // namespace seqtune
