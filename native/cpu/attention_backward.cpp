// Attention backward (packed layout), deterministic and without a T x T buffer. P is recomputed
// blockwise from the forward's lse, and with Di = rowsum(dout ∘ out), dS = P ∘ (dout·vᵀ - Di).
// One task per (document, kv head) owns every gradient row it touches, so no atomics and no
// dependence on the thread count: key blocks in order, and for each the group's query heads, then
// the query blocks that see it, in order; each (query block, key block) pair computes P and dS
// once and adds dv += Pᵀ·dout, dk += scale · dSᵀ·q and dq += scale · dS·k (dq's sum per row runs
// over the key blocks in order). q (pre-scaled) and dout are first copied head-major, [H, T, D],
// so a block of query rows of one head is contiguous.
#include <vector>

#include "native/cpu/attention_avx2.h"
#include "native/cpu/attention_kernels.h"
#include "kernels/common/errors.h"

namespace seqtune::cpu {

using namespace attn;

namespace {

template <typename T>
struct BackwardCtx {
  AttentionDims dims;
  int64_t group;
  const T *k, *v;
  const T* lse;  // [H, T]
  const int32_t* cu;
  std::vector<T> qs, dout;  // [H, T, D]; qs = scale · q
  std::vector<T> di;        // [H, T]: rowsum(dout ∘ out)
  T *dq, *dk, *dv;
  std::vector<Tile> tiles;
};

// One tile per document and kv head (first = 0, count = its length), costliest first.
std::vector<Tile> documentTiles(const AttentionDims& d, const int32_t* cu) {
  std::vector<std::pair<int64_t, Tile>> costed;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t len = cu[b + 1] - cu[b];
    for (int64_t g = 0; g < d.kvHeads; ++g) costed.push_back({len * len, Tile{b, g, 0, len}});
  }
  return costliestFirst(std::move(costed));
}

// Recomputes one row's probabilities and dS against a packed key block: p = e^(q·k - lse) for
// the first `count` keys (0 after), ds = p · (dout·v - di). q is pre-scaled.
template <class Rows, typename T, int kD>
inline void probabilityRow(const T* qs, const T* dout, const T* kPacked, const T* vPacked, int64_t D, int64_t count,
                           T lse, T di, T* p, T* ds) {
  Rows::template score<kD>(qs, kPacked, D, p);
  Rows::mask(p, count);
  Rows::exp(p, lse);
  Rows::template score<kD>(dout, vPacked, D, ds);
  for (int j = 0; j < kBlockK; ++j) ds[j] = p[j] * (ds[j] - di);
}

template <typename T, int kD>
struct DocumentWorker {
  static void run(const BackwardCtx<T>& c, std::atomic<int64_t>& next) { work<PortableRows>(c, next); }
#ifdef SEQTUNE_ATTN_X86
  SEQTUNE_ATTN_AVX2 static void runAvx2(const BackwardCtx<T>& c, std::atomic<int64_t>& next) {
    work<Avx2Rows>(c, next);
  }
#endif

  template <class Rows>
  static void work(const BackwardCtx<T>& c, std::atomic<int64_t>& next) {
    const int64_t D = kD > 0 ? kD : c.dims.headDim;
    std::vector<T> kp(D * kBlockK), vp(D * kBlockK), dk(kBlockK * D), dv(kBlockK * D), p(kBlockQ * kBlockK),
        ds(kBlockQ * kBlockK);
    for (int64_t t; (t = next.fetch_add(1)) < static_cast<int64_t>(c.tiles.size());) {
      tile<Rows>(c, c.tiles[t], kp.data(), vp.data(), dk.data(), dv.data(), p.data(), ds.data());
    }
  }

  // dq's rows of the tile are summed in place in c.dq (unscaled), then scaled.
  template <class Rows>
  static void tile(const BackwardCtx<T>& c, const Tile& tile, T* kp, T* vp, T* dk, T* dv, T* p, T* ds) {
    const AttentionDims& d = c.dims;
    const int64_t D = kD > 0 ? kD : d.headDim;
    const int64_t H = d.heads, T_ = d.tokens, len = tile.count;
    const int64_t start = c.cu[tile.b];
    const KvView kv = kvView(d, c.cu, tile.b, tile.g);
    auto dqRow = [&](int64_t hl, int64_t i) { return c.dq + ((start + i) * H + tile.g * c.group + hl) * D; };
    for (int64_t hl = 0; hl < c.group; ++hl) {
      for (int64_t i = 0; i < len; ++i) std::fill(dqRow(hl, i), dqRow(hl, i) + D, T(0));
    }
    for (int64_t k0 = 0; k0 < len; k0 += kBlockK) {
      const int64_t nk = std::min(kBlockK, len - k0);
      const T* kRows = c.k + kv.base + k0 * kv.ld;
      packTransposed(kRows, kv.ld, nk, D, kp);
      packTransposed(c.v + kv.base + k0 * kv.ld, kv.ld, nk, D, vp);
      std::fill(dk, dk + nk * D, T(0));
      std::fill(dv, dv + nk * D, T(0));
      // Causal: queries before the block see none of its keys.
      const int64_t firstQuery = d.causal ? k0 : 0;
      for (int64_t hl = 0; hl < c.group; ++hl) {
        const int64_t h = tile.g * c.group + hl;
        for (int64_t i0 = firstQuery; i0 < len; i0 += kBlockQ) {
          const int64_t rows = std::min(kBlockQ, len - i0);
          const int64_t first = h * T_ + start + i0;  // row of query i0 in the head-major buffers
          const T* qRows = c.qs.data() + first * D;
          const T* doutRows = c.dout.data() + first * D;
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t count = std::min(visibleKeys(d.causal, i0 + r, len) - k0, nk);
            probabilityRow<Rows, T, kD>(qRows + r * D, doutRows + r * D, kp, vp, D, count, c.lse[first + r],
                                        c.di[first + r], p + r * kBlockK, ds + r * kBlockK);
            Rows::template accumulate<kD>(ds + r * kBlockK, 1, kRows, kv.ld, count, D, dqRow(hl, i0 + r));
          }
          Rows::template accumulateOuter<kD>(p, doutRows, D, rows, nk, D, dv);
          Rows::template accumulateOuter<kD>(ds, qRows, D, rows, nk, D, dk);
        }
      }
      for (int64_t j = 0; j < nk; ++j) {
        const int64_t row = ((start + k0 + j) * d.kvHeads + tile.g) * D;
        std::copy(dk + j * D, dk + (j + 1) * D, c.dk + row);
        std::copy(dv + j * D, dv + (j + 1) * D, c.dv + row);
      }
    }
    const T scale = static_cast<T>(d.scale);
    for (int64_t hl = 0; hl < c.group; ++hl) {
      for (int64_t i = 0; i < len; ++i) {
        T* row = dqRow(hl, i);
        for (int64_t x = 0; x < D; ++x) row[x] *= scale;
      }
    }
  }
};

}  // namespace

template <typename T>
void attentionBackward(const AttentionDims& dims, const char* op, const T* dout, const T* q, const T* k, const T* v,
                       const T* out, const T* lse, const int32_t* cuSeqlens, T* dq, T* dk, T* dv) {
  // The forward's checks; the backward is packed only, so that is cuSeqlens.
  checkAttentionIndices(dims, op, cuSeqlens, nullptr, nullptr);
  const int64_t T_ = dims.tokens, H = dims.heads, D = dims.headDim;
  BackwardCtx<T> ctx{dims, H / dims.kvHeads, k, v, lse, cuSeqlens, {}, {}, {}, dq, dk, dv, {}};
  ctx.qs.resize(static_cast<size_t>(T_ * H * D));
  ctx.dout.resize(ctx.qs.size());
  ctx.di.resize(static_cast<size_t>(T_ * H));
  const T scale = static_cast<T>(dims.scale);
  parallelFor(T_ * H, 256, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t to = (row % H) * T_ + row / H;  // [T, H] -> [H, T]
      T sum = 0;
      for (int64_t x = 0; x < D; ++x) {
        ctx.qs[to * D + x] = q[row * D + x] * scale;
        ctx.dout[to * D + x] = dout[row * D + x];
        sum += dout[row * D + x] * out[row * D + x];
      }
      ctx.di[to] = sum;
    }
  });
  ctx.tiles = documentTiles(dims, cuSeqlens);
  runWorkers(static_cast<int64_t>(ctx.tiles.size()), pickWorker<DocumentWorker, T>(D), ctx);
}

template void attentionBackward<float>(const AttentionDims&, const char*, const float*, const float*, const float*,
                                       const float*, const float*, const float*, const int32_t*, float*, float*,
                                       float*);
template void attentionBackward<double>(const AttentionDims&, const char*, const double*, const double*,
                                        const double*, const double*, const double*, const double*, const int32_t*,
                                        double*, double*, double*);

}  // namespace seqtune::cpu
