#include "native/cpu/rmsnorm_residual.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// Rows of work per parallel range: enough elements per range to outweigh the hand-off.
int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

// The value `v` has once stored in `dtype`: the forward normalises the stored (rounded) sum, as
// Hugging Face does after its bf16 residual add, so the backward's `sum` input is what was used.
template <typename T>
T stored(DType dtype, T v) {
  if (dtype == DType::BF16) return static_cast<T>(bf16ToFloat(floatToBf16(static_cast<float>(v))));
  if (dtype == DType::F16) return static_cast<T>(f16ToFloat(floatToF16(static_cast<float>(v))));
  return v;
}

template <typename T>
void forward(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, const Tensor& out,
             const Tensor& sum, const Tensor& rstd) {
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  HostIn<T> xs(x), w(weight);
  std::optional<HostIn<T>> res;
  if (residual) res.emplace(*residual);
  HostOut<T> o(out, false), s(sum, false);
  HostOut<T> r(rstd, false);
  parallelFor(rows, rowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * cols;
      double squares = 0;
      for (int64_t c = 0; c < cols; ++c) {
        T v = stored(x.dtype(), res ? xs[base + c] + (*res)[base + c] : xs[base + c]);
        s[base + c] = v;
        squares += static_cast<double>(v) * static_cast<double>(v);
      }
      const double scale = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
      r[row] = static_cast<T>(scale);
      for (int64_t c = 0; c < cols; ++c) o[base + c] = s[base + c] * static_cast<T>(scale) * w[c];
    }
  });
  o.commit();
  s.commit();
}

// With y = s·r·w and r = (mean(s²) + eps)^-½: ds_k = r·(g_k·w_k - s_k·r²·mean_j(g_j·w_j·s_j)).
template <typename T>
void backward(const Tensor& dout, const Tensor& sum, const Tensor& weight, const Tensor& rstd, const Tensor* dsum,
              const Tensor& dx, const Tensor* dweight) {
  const int64_t cols = dout.dim(-1);
  const int64_t rows = dout.numel() / cols;
  HostIn<T> g(dout), s(sum), w(weight);
  HostIn<T> r(rstd);
  std::optional<HostIn<T>> ds;
  if (dsum) ds.emplace(*dsum);
  HostOut<T> d(dx, false);
  parallelFor(rows, rowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * cols;
      double dot = 0;
      for (int64_t c = 0; c < cols; ++c) {
        dot += static_cast<double>(g[base + c]) * static_cast<double>(w[c]) * static_cast<double>(s[base + c]);
      }
      const double rr = r[row];
      const T rt = static_cast<T>(rr);
      const T coef = static_cast<T>(rr * rr * rr * dot / static_cast<double>(cols));
      for (int64_t c = 0; c < cols; ++c) {
        T v = rt * g[base + c] * w[c] - s[base + c] * coef;
        d[base + c] = ds ? v + (*ds)[base + c] : v;
      }
    }
  });
  d.commit();
  if (!dweight) return;
  HostOut<T> dw(*dweight, false);
  parallelFor(cols, std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(static_cast<size_t>(end - begin), 0.0);
    for (int64_t row = 0; row < rows; ++row) {
      const double rr = r[row];
      const T* gr = g.data() + row * cols;
      const T* sr = s.data() + row * cols;
      for (int64_t c = begin; c < end; ++c) {
        acc[c - begin] += static_cast<double>(gr[c]) * static_cast<double>(sr[c]) * rr;
      }
    }
    for (int64_t c = begin; c < end; ++c) dw[c] = static_cast<T>(acc[c - begin]);
  });
  dw.commit();
}

}  // namespace

void rmsnormResidualForward(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, const Tensor& out,
                            const Tensor& sum, const Tensor& rstd) {
  withComputeType(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, residual, weight, eps, out, sum, rstd); });
}

void rmsnormResidualBackward(const Tensor& dout, const Tensor& sum, const Tensor& weight, const Tensor& rstd,
                             const Tensor* dsum, const Tensor& dx, const Tensor* dweight) {
  withComputeType(dout.dtype(), [&](auto zero) { backward<decltype(zero)>(dout, sum, weight, rstd, dsum, dx, dweight); });
}

}  // namespace seqtune::cpu
