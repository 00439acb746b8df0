#include "native/cpu/rmsnorm_residual.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "native/cpu/host_view.h"
#include "native/cpu/lane_sum.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// Rows of work per parallel range: enough elements per range to outweigh the hand-off.
int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }
// Rows per block of the backward (a task, and one partial sum of dweight).
constexpr int64_t kWeightRows = 256;

// Rounds a row of sums to what they are once stored in `dtype`: the forward normalises the stored
// (rounded) sum, as Hugging Face does after its bf16 residual add, so the backward's `sum` input
// is what was used.
template <typename T>
void roundAsStored(DType dtype, T* v, int64_t n) {
  if (dtype == DType::BF16) {
    for (int64_t c = 0; c < n; ++c) v[c] = static_cast<T>(bf16ToFloat(floatToBf16(static_cast<float>(v[c]))));
  } else if (dtype == DType::F16) {
    for (int64_t c = 0; c < n; ++c) v[c] = static_cast<T>(f16ToFloat(floatToF16(static_cast<float>(v[c]))));
  }
}

// Σ_c a[c]·b[c]·(e ? e[c] : 1) in T (f32, or f64 for the gradient-check oracle), in laneSum's
// fixed order.
template <typename T>
T rowDot(const T* __restrict a, const T* __restrict b, const T* __restrict e, int64_t n) {
  if (e) return laneSum<T>(n, [&](int64_t c) { return a[c] * b[c] * e[c]; });
  return laneSum<T>(n, [&](int64_t c) { return a[c] * b[c]; });
}

template <typename T>
void forward(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, const Tensor& out,
             const Tensor& sum, const Tensor& rstd) {
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  const DType dtype = x.dtype();
  HostIn<T> xs(x), w(weight);
  std::optional<HostIn<T>> res;
  if (residual) res.emplace(*residual);
  HostOut<T> o(out, false), s(sum, false);
  HostOut<T> r(rstd, false);
  parallelFor(rows, rowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * cols;
      const T* __restrict xr = xs.data() + base;
      T* __restrict sr = s.data() + base;
      T* __restrict orow = o.data() + base;
      if (res) {
        const T* __restrict rr = res->data() + base;
        for (int64_t c = 0; c < cols; ++c) sr[c] = xr[c] + rr[c];
      } else {
        std::copy(xr, xr + cols, sr);
      }
      roundAsStored(dtype, sr, cols);
      const double squares = rowDot<T>(sr, sr, nullptr, cols);
      const double scale = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
      r[row] = static_cast<T>(scale);
      const T scaleT = static_cast<T>(scale);
      const T* __restrict wr = w.data();
      for (int64_t c = 0; c < cols; ++c) orow[c] = sr[c] * scaleT * wr[c];
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
  // dweight's sum over rows in f64, per block of kWeightRows rows (blocks in order at the end):
  // the blocks, not the threads, fix the order, and g and s are read once for dx and dweight.
  const int64_t blocks = (rows + kWeightRows - 1) / kWeightRows;
  std::vector<double> partial(dweight ? static_cast<size_t>(blocks * cols) : 0, 0.0);
  parallelFor(blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t row = first * kWeightRows; row < std::min(rows, last * kWeightRows); ++row) {
      const int64_t base = row * cols;
      const T* __restrict gr = g.data() + base;
      const T* __restrict sr = s.data() + base;
      const T* __restrict wr = w.data();
      T* __restrict dr = d.data() + base;
      const double dot = rowDot<T>(gr, wr, sr, cols);
      const double rr = r[row];
      const T rt = static_cast<T>(rr);
      const T coef = static_cast<T>(rr * rr * rr * dot / static_cast<double>(cols));
      if (ds) {
        const T* __restrict dsr = ds->data() + base;
        for (int64_t c = 0; c < cols; ++c) dr[c] = rt * gr[c] * wr[c] - sr[c] * coef + dsr[c];
      } else {
        for (int64_t c = 0; c < cols; ++c) dr[c] = rt * gr[c] * wr[c] - sr[c] * coef;
      }
      if (dweight) {
        double* __restrict acc = partial.data() + (row / kWeightRows) * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += static_cast<double>(gr[c]) * static_cast<double>(sr[c]) * rr;
      }
    }
  });
  d.commit();
  if (!dweight) return;
  HostOut<T> dw(*dweight, false);
  for (int64_t c = 0; c < cols; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < blocks; ++b) sum += partial[b * cols + c];
    dw[c] = static_cast<T>(sum);
  }
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
