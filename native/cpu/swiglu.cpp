#include "native/cpu/swiglu.h"

#include <cmath>

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// 1 / (1 + e^-g): exp overflows to inf for very negative g, giving 0, never NaN.
template <typename T>
T sigmoid(T g) {
  return T(1) / (T(1) + std::exp(-g));
}

}  // namespace

void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  withComputeType(gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> g(gate), u(up);
    HostOut<T> o(out, false);
    parallelFor(out.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = g[i] * sigmoid(g[i]) * u[i];
    });
    o.commit();
  });
}

void swigluBackward(const Tensor& dout, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup) {
  withComputeType(gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> d(dout), g(gate), u(up);
    HostOut<T> dg(dgate, false), du(dup, false);
    parallelFor(dgate.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T s = sigmoid(g[i]);
        dg[i] = d[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
        du[i] = d[i] * g[i] * s;
      }
    });
    dg.commit();
    du.commit();
  });
}

}  // namespace seqtune::cpu
