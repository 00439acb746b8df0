#include "native/cpu/dropout.h"

#include "kernels/common/philox.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

}  // namespace

template <typename T>
void dropoutValues(int64_t n, const T* src, double p, uint64_t seed, uint64_t offset, T* dst) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const float pf = static_cast<float>(p);
  parallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dst[i] = dropoutKeep(seed, offset, static_cast<uint64_t>(i), pf) ? src[i] * scale : T(0);
    }
  });
}

template void dropoutValues<float>(int64_t, const float*, double, uint64_t, uint64_t, float*);
template void dropoutValues<double>(int64_t, const double*, double, uint64_t, uint64_t, double*);

void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> in(x);
    HostOut<T> o(out, false);
    dropoutValues(out.numel(), in.data(), p, seed, offset, o.data());
    o.commit();
  });
}

}  // namespace seqtune::cpu
