#include "native/cpu/lora.h"

#include <cstring>
#include <vector>

#include "native/cpu/dropout.h"
#include "native/cpu/gemm.h"
#include "native/cpu/host_view.h"

namespace seqtune::cpu {

namespace {

// drop(x), or drop's backward on a gradient (dst may be src): the dropout op's mask and scale.
template <typename T>
void applyDropout(const LoraAttrs& at, int64_t n, const T* src, T* dst) {
  dropoutValues(n, src, at.p, at.seed, at.offset, dst);
}

// The adapter's input: x itself without dropout, else a masked copy in `buffer`.
template <typename T>
const T* dropped(const LoraAttrs& at, int64_t n, const T* x, std::vector<T>& buffer) {
  if (at.p == 0) return x;
  buffer.resize(static_cast<size_t>(n));
  applyDropout(at, n, x, buffer.data());
  return buffer.data();
}

}  // namespace

void loraLinear(const LoraDims& d, const LoraAttrs& at, const Tensor& x, const Tensor& w, const Tensor& a,
                const Tensor& b, const Tensor* bias, const Tensor& y, const Tensor& xaOut) {
  if (d.tokens == 0) return;
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> xs(x), ws(w), as(a), bs(b);
    HostOut<T> ys(y, false), xa(xaOut, false);
    // Start from the bias so the base product accumulates onto it (beta = 1).
    if (bias) {
      HostIn<T> bi(*bias);
      for (int64_t t = 0; t < d.tokens; ++t) std::memcpy(&ys[t * d.out], bi.data(), d.out * sizeof(T));
    }
    gemm(false, true, d.tokens, d.out, d.in, T(1), xs.data(), d.in, ws.data(), d.in, bias ? T(1) : T(0), ys.data(),
         d.out);
    std::vector<T> buffer;
    const T* xd = dropped(at, d.tokens * d.in, xs.data(), buffer);
    gemm(false, true, d.tokens, d.rank, d.in, T(1), xd, d.in, as.data(), d.in, T(0), xa.data(), d.rank);
    gemm(false, true, d.tokens, d.out, d.rank, T(at.scale), xa.data(), d.rank, bs.data(), d.rank, T(1), ys.data(),
         d.out);
    ys.commit();
    xa.commit();
  });
}

void loraLinearBackward(const LoraDims& d, const LoraAttrs& at, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& a, const Tensor& b, const Tensor& xaIn, const Tensor* dx, const Tensor& da,
                        const Tensor& db) {
  if (d.tokens == 0) {
    // No tokens: the adapter gradients are empty sums.
    std::memset(da.raw(), 0, da.nbytes());
    std::memset(db.raw(), 0, db.nbytes());
    return;
  }
  withComputeType(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> g(dy), xs(x), as(a), bs(b), xa(xaIn);
    HostOut<T> das(da, false), dbs(db, false);
    const T s = T(at.scale);
    // dB = scale · dyᵀ · xa
    gemm(true, false, d.out, d.rank, d.tokens, s, g.data(), d.out, xa.data(), d.rank, T(0), dbs.data(), d.rank);
    // dxa = scale · dy · B
    std::vector<T> dxa(static_cast<size_t>(d.tokens * d.rank));
    gemm(false, false, d.tokens, d.rank, d.out, s, g.data(), d.out, bs.data(), d.rank, T(0), dxa.data(), d.rank);
    // dA = dxaᵀ · drop(x), the mask regenerated from (seed, offset)
    std::vector<T> buffer;
    const T* xd = dropped(at, d.tokens * d.in, xs.data(), buffer);
    gemm(true, false, d.rank, d.in, d.tokens, T(1), dxa.data(), d.rank, xd, d.in, T(0), das.data(), d.in);
    das.commit();
    dbs.commit();
    if (!dx) return;
    // dx = drop_backward(dxa · A) + dy · W
    HostIn<T> ws(w);
    HostOut<T> dxs(*dx, false);
    gemm(false, false, d.tokens, d.in, d.rank, T(1), dxa.data(), d.rank, as.data(), d.in, T(0), dxs.data(), d.in);
    if (at.p > 0) applyDropout(at, d.tokens * d.in, dxs.data(), dxs.data());
    gemm(false, false, d.tokens, d.in, d.out, T(1), g.data(), d.out, ws.data(), d.in, T(1), dxs.data(), d.in);
    dxs.commit();
  });
}

}  // namespace seqtune::cpu
