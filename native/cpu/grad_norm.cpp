#include "native/cpu/grad_norm.h"

#include <algorithm>
#include <cmath>

#include "native/cpu/host_view.h"
#include "native/cpu/lane_sum.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;
// Elements per partial sum of gradNorm: the order of the f64 additions is fixed by this alone.
constexpr int64_t kNormBlock = 1 << 14;
// torch.nn.utils.clip_grad_norm_'s guard against a zero norm.
constexpr double kClipEps = 1e-6;

// Σ x² over elements [begin, end) of a floating tensor, read in its own dtype, in f64.
double sumSquares(const Tensor& t, int64_t begin, int64_t end) {
  auto squares = [&](auto read) {
    return laneSum<double>(end - begin, [&](int64_t i) {
      const double x = read(begin + i);
      return x * x;
    });
  };
  switch (t.dtype()) {
    case DType::F32: return squares([&](int64_t i) { return static_cast<double>(t.data<float>()[i]); });
    case DType::F64: return squares([&](int64_t i) { return t.data<double>()[i]; });
    case DType::BF16: return squares([&](int64_t i) { return static_cast<double>(bf16ToFloat(t.data<uint16_t>()[i])); });
    case DType::F16: return squares([&](int64_t i) { return static_cast<double>(f16ToFloat(t.data<uint16_t>()[i])); });
    case DType::I32: break;  // rejected by the builder
  }
  return 0;
}

}  // namespace

void gradNorm(const std::vector<TensorPtr>& tensors, const Tensor& out) {
  struct Block {
    size_t tensor;
    int64_t begin, end;
  };
  std::vector<Block> blocks;
  for (size_t k = 0; k < tensors.size(); ++k) {
    for (int64_t b = 0; b < tensors[k]->numel(); b += kNormBlock) {
      blocks.push_back({k, b, std::min(tensors[k]->numel(), b + kNormBlock)});
    }
  }
  std::vector<double> partial(blocks.size(), 0.0);
  parallelFor(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      partial[i] = sumSquares(*tensors[blocks[i].tensor], blocks[i].begin, blocks[i].end);
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  out.data<float>()[0] = static_cast<float>(std::sqrt(total));
}

double clipFactor(const Tensor& norm, double maxNorm) {
  double n = HostIn<double>(norm)[0];
  double coef = maxNorm / (n + kClipEps);
  return coef < 1 ? coef : 1.0;
}

void clipByNorm(const Tensor& norm, double maxNorm, const std::vector<TensorPtr>& tensors) {
  const double factor = clipFactor(norm, maxNorm);
  if (factor == 1.0) return;
  for (const TensorPtr& t : tensors) {
    withComputeType(t->dtype(), [&](auto zero) {
      using T = decltype(zero);
      HostOut<T> x(*t, true);
      const T f = T(factor);
      parallelFor(t->numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) x[i] *= f;
      });
      x.commit();
    });
  }
}

}  // namespace seqtune::cpu
