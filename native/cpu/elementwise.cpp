#include "native/cpu/elementwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/common/philox.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 15;

// Fills a CPU tensor from gen(firstIndex, buffer, count) in small chunks across the threads, so a
// generated tensor costs no more memory than itself (a 2 GB bf16 embedding needs no 8 GB buffer).
template <typename Gen>
void generateChunked(const Tensor& out, Gen gen) {
  constexpr int64_t kChunk = 4096;
  const size_t elementBytes = dtypeSize(out.dtype());
  parallelFor((out.numel() + kChunk - 1) / kChunk, 8, [&](int64_t begin, int64_t end) {
    double buffer[kChunk];
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * kChunk;
      const int64_t n = std::min(kChunk, out.numel() - first);
      gen(first, buffer, n);
      convertTo<double>(out.dtype(), buffer, static_cast<char*>(out.raw()) + first * elementBytes, n);
    }
  });
}

}  // namespace

void axpby(const Tensor& x, const Tensor& y, const Tensor& out, double alpha, double beta, bool multiply) {
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> a(x), b(y);
    HostOut<T> o(out, false);
    parallelFor(out.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        o[i] = multiply ? a[i] * b[i] : T(alpha) * a[i] + T(beta) * b[i];
      }
    });
    o.commit();
  });
}

void scale(const Tensor& x, const Tensor& out, double alpha) {
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> a(x);
    HostOut<T> o(out, false);
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = T(alpha) * a[i];
    o.commit();
  });
}

void addInplace(const Tensor& x, const Tensor& y, double alpha) {
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> b(y);
    HostOut<T> a(x, true);
    parallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) a[i] += T(alpha) * b[i];
    });
    a.commit();
  });
}

void cast(const Tensor& src, const Tensor& dst) {
  if (src.dtype() == DType::F64 || dst.dtype() == DType::F64) {
    HostIn<double> a(src);
    convertTo<double>(dst.dtype(), a.data(), dst.raw(), dst.numel());
  } else if (src.dtype() == DType::I32 && dst.dtype() == DType::I32) {
    std::memmove(dst.raw(), src.raw(), src.nbytes());
  } else {
    HostIn<float> a(src);
    convertTo<float>(dst.dtype(), a.data(), dst.raw(), dst.numel());
  }
}

void fill(const Tensor& out, double value) {
  generateChunked(out, [value](int64_t, double* dst, int64_t n) { std::fill(dst, dst + n, value); });
}

void random(const Tensor& out, uint64_t seed, uint64_t offset, double a, double b, bool normal) {
  generateChunked(out, [=](int64_t first, double* dst, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      double r = normal ? philoxNormal(seed, offset, first + k) : philoxUniform(seed, offset, first + k);
      dst[k] = normal ? a + b * r : a + (b - a) * r;
    }
  });
}

void sum(const Tensor& x, const Tensor& out) {
  HostIn<double> a(x);
  constexpr int64_t kBlock = 4096;
  int64_t blocks = (x.numel() + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  parallelFor(blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      double s = 0;
      for (int64_t i = blk * kBlock; i < std::min(x.numel(), (blk + 1) * kBlock); ++i) s += a[i];
      partial[blk] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  convertTo<double>(out.dtype(), &total, out.raw(), 1);
}

}  // namespace seqtune::cpu
