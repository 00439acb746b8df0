#include "native/cpu/adamw.h"

#include <cmath>

#include "native/cpu/grad_norm.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// One tensor's step in its parameter's precision.
template <typename T>
void adamwTensor(const AdamwHyper& hp, double clip, const Tensor& param, const Tensor& grad, const Tensor& mT,
                 const Tensor& vT) {
  HostIn<T> g(grad);
  T* p = param.data<T>();
  HostOut<T> m(mT, true), v(vT, true);
  const T decay = T(1 - hp.lr * hp.weightDecay);
  const T b1 = T(hp.beta1), b2 = T(hp.beta2), c = T(clip);
  const T stepSize = T(hp.lr / (1 - std::pow(hp.beta1, static_cast<double>(hp.step))));
  const T bc2Sqrt = T(std::sqrt(1 - std::pow(hp.beta2, static_cast<double>(hp.step))));
  const T eps = T(hp.eps);
  parallelFor(param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T gi = g[i] * c;
      // Decoupled weight decay first, then the moments, as torch.optim.AdamW.
      p[i] *= decay;
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] -= stepSize * m[i] / (std::sqrt(v[i]) / bc2Sqrt + eps);
    }
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
