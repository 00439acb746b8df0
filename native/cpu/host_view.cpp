#include "native/cpu/host_view.h"

#include <type_traits>

namespace seqtune {

template <typename T>
void convertFrom(DType from, const void* src, T* dst, int64_t n) {
  switch (from) {
    case DType::F32: {
      const float* s = static_cast<const float*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
    case DType::F64: {
      const double* s = static_cast<const double*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(bf16ToFloat(s[i]));
      break;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(f16ToFloat(s[i]));
      break;
    }
    case DType::I32: {
      const int32_t* s = static_cast<const int32_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
  }
}

template <typename T>
void convertTo(DType to, const T* src, void* dst, int64_t n) {
  switch (to) {
    case DType::F32: {
      float* d = static_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(src[i]);
      break;
    }
    case DType::F64: {
      double* d = static_cast<double*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<double>(src[i]);
      break;
    }
    case DType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = floatToBf16(static_cast<float>(src[i]));
      break;
    }
    case DType::F16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = floatToF16(static_cast<float>(src[i]));
      break;
    }
    case DType::I32: {
      int32_t* d = static_cast<int32_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<int32_t>(src[i]);
      break;
    }
  }
}

template <typename T>
static constexpr DType nativeDtype() {
  if constexpr (std::is_same_v<T, double>) return DType::F64;
  if constexpr (std::is_same_v<T, int32_t>) return DType::I32;
  return DType::F32;
}

template <typename T>
HostIn<T>::HostIn(const Tensor& t) {
  if (t.dtype() == nativeDtype<T>()) {
    ptr_ = t.data<T>();
  } else {
    copy_.resize(static_cast<size_t>(t.numel()));
    convertFrom<T>(t.dtype(), t.raw(), copy_.data(), t.numel());
    ptr_ = copy_.data();
  }
}

template <typename T>
HostOut<T>::HostOut(const Tensor& t, bool load) : tensor_(t) {
  if (t.dtype() == nativeDtype<T>()) {
    ptr_ = t.data<T>();
  } else {
    copy_.resize(static_cast<size_t>(t.numel()));
    if (load) convertFrom<T>(t.dtype(), t.raw(), copy_.data(), t.numel());
    ptr_ = copy_.data();
  }
}

template <typename T>
void HostOut<T>::commit() {
  if (!copy_.empty()) convertTo<T>(tensor_.dtype(), copy_.data(), tensor_.raw(), tensor_.numel());
}

template class HostIn<float>;
template class HostIn<double>;
template class HostIn<int32_t>;
template class HostOut<float>;
template class HostOut<double>;
template class HostOut<int32_t>;
template void convertFrom<float>(DType, const void*, float*, int64_t);
template void convertFrom<double>(DType, const void*, double*, int64_t);
template void convertTo<float>(DType, const float*, void*, int64_t);
template void convertTo<double>(DType, const double*, void*, int64_t);

}  // namespace seqtune
