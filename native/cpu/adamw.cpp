#include "native/cpu/adamw.h"

#include <cmath>

#include "native/cpu/grad_norm.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// The step's constants in the parameter's precision.
template <typename T>
struct StepConsts {
  T decay, b1, b2, c, stepSize, bc2Sqrt, eps;
};

// Elements [0, n) through plain pointers: the compiler vectorises the loop (sqrt too, with
// -fno-math-errno) after a run-time check that p, m, v and g do not overlap. An AVX2 build
// measured no faster: at the demo's size the step is bound by memory traffic.
template <typename T>
void stepRange(const StepConsts<T>& k, const T* g, T* p, T* m, T* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * k.c;
    // Decoupled weight decay first, then the moments, as torch.optim.AdamW.
    p[i] *= k.decay;
    m[i] = k.b1 * m[i] + (T(1) - k.b1) * gi;
    v[i] = k.b2 * v[i] + (T(1) - k.b2) * gi * gi;
    p[i] -= k.stepSize * m[i] / (std::sqrt(v[i]) / k.bc2Sqrt + k.eps);
  }
}

// One tensor's step in its parameter's precision.
template <typename T>
void adamwTensor(const AdamwHyper& hp, double clip, const Tensor& param, const Tensor& grad, const Tensor& mT,
                 const Tensor& vT) {
  HostIn<T> g(grad);
  T* p = param.data<T>();
  HostOut<T> m(mT, true), v(vT, true);
  const StepConsts<T> k{T(1 - hp.lr * hp.weightDecay),
                        T(hp.beta1),
                        T(hp.beta2),
                        T(clip),
                        T(hp.lr / (1 - std::pow(hp.beta1, static_cast<double>(hp.step)))),
                        T(std::sqrt(1 - std::pow(hp.beta2, static_cast<double>(hp.step)))),
                        T(hp.eps)};
  parallelFor(param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    stepRange(k, g.data() + begin, p + begin, m.data() + begin, v.data() + begin, end - begin);
  });
  m.commit();
  v.commit();
}

}  // namespace

void adamw(const AdamwHyper& hp, const Tensor* norm, const Tensor* guard, const std::vector<TensorPtr>& params,
           const std::vector<TensorPtr>& grads, const std::vector<TensorPtr>& ms, const std::vector<TensorPtr>& vs) {
  if (guard && !std::isfinite(HostIn<double>(*guard)[0])) return;
  const double clip = hp.maxGradNorm > 0 ? clipFactor(*norm, hp.maxGradNorm) : 1.0;
  for (size_t i = 0; i < params.size(); ++i) {
    withComputeType(params[i]->dtype(), [&](auto zero) {
      adamwTensor<decltype(zero)>(hp, clip, *params[i], *grads[i], *ms[i], *vs[i]);
    });
  }
}

}  // namespace seqtune::cpu
