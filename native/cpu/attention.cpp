// Attention forward (FlashAttention-2 style on the CPU), the device-side index checks, and the KV
// cache write. A task is one tile: a block of queries of one document times the query heads of
// one kv head, so each packed key block is shared by the whole group. Key blocks are visited in
// order and each query row keeps its running max m, sum l and unnormalised output.
#include <cstring>
#include <vector>

#include "native/cpu/attention_avx2.h"
#include "native/cpu/attention_kernels.h"
#include "kernels/common/errors.h"

namespace seqtune::cpu {

using namespace attn;

void checkSeqlens(const char* op, const int32_t* cu, int64_t batch, int64_t tokens) {
  if (cu[0] != 0) fail(code::kIndex, op, ": cuSeqlens[0] must be 0, got ", cu[0]);
  for (int64_t b = 0; b < batch; ++b) {
    if (cu[b + 1] < cu[b]) {
      fail(code::kIndex, op, ": cuSeqlens must not decrease, got ", cu[b], " then ", cu[b + 1], " at ", b);
    }
  }
  if (cu[batch] != tokens) fail(code::kIndex, op, ": cuSeqlens must end at T = ", tokens, ", got ", cu[batch]);
}

void checkAttentionIndices(const AttentionDims& dims, const char* op, const int32_t* cuSeqlens, const int32_t* qOffset,
                           const int32_t* kvLens) {
  checkSeqlens(op, cuSeqlens, dims.batch, dims.tokens);
  if (dims.maxTokens == 0) return;
  for (int64_t b = 0; b < dims.batch; ++b) {
    if (qOffset[b] < 0) fail(code::kIndex, op, ": qOffset[", b, "] = ", qOffset[b], " is negative");
    if (kvLens[b] < 0 || kvLens[b] > dims.maxTokens) {
      fail(code::kIndex, op, ": kvLens[", b, "] = ", kvLens[b], " is outside [0, ", dims.maxTokens, "]");
    }
  }
}

namespace {

// Query tiles of every document and kv head.
std::vector<Tile> queryTiles(const AttentionDims& d, const int32_t* cu, const int32_t* qOffset, const int32_t* kvLens) {
  std::vector<std::pair<int64_t, Tile>> costed;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t len = cu[b + 1] - cu[b];
    const int64_t offset = qOffset ? qOffset[b] : 0;
    const int64_t keys = kvLens ? kvLens[b] : len;
    for (int64_t q0 = 0; q0 < len; q0 += kBlockQ) {
      const int64_t nq = std::min(kBlockQ, len - q0);
      const int64_t cost = nq * (visibleKeys(d.causal, offset + q0 + nq - 1, keys) + 1);
      for (int64_t g = 0; g < d.kvHeads; ++g) costed.push_back({cost, Tile{b, g, q0, nq}});
    }
  }
  return costliestFirst(std::move(costed));
}

template <typename T>
struct ForwardCtx {
  AttentionDims dims;
  int64_t group;  // query heads per kv head
  const T *q, *k, *v;
  const int32_t *cu, *qOffset, *kvLens;
  T* out;
  T* lse;
  std::vector<Tile> tiles;
};

template <typename T, int kD>
struct ForwardWorker {
  static void run(const ForwardCtx<T>& c, std::atomic<int64_t>& next) { work<PortableRows>(c, next); }
#ifdef SEQTUNE_ATTN_X86
  SEQTUNE_ATTN_AVX2 static void runAvx2(const ForwardCtx<T>& c, std::atomic<int64_t>& next) { work<Avx2Rows>(c, next); }
#endif

  template <class Rows>
  static void work(const ForwardCtx<T>& c, std::atomic<int64_t>& next) {
    const AttentionDims& d = c.dims;
    const int64_t D = kD > 0 ? kD : d.headDim;
    const int64_t rowsMax = c.group * kBlockQ;
    std::vector<T> qs(rowsMax * D), acc(rowsMax * D), packed(D * kBlockK), s(kBlockK), m(rowsMax), l(rowsMax);
    std::vector<int64_t> visible(rowsMax);
    for (int64_t t; (t = next.fetch_add(1)) < static_cast<int64_t>(c.tiles.size());) {
      tile<Rows>(c, c.tiles[t], qs.data(), acc.data(), packed.data(), s.data(), m.data(), l.data(), visible.data());
    }
  }

  // Rows r = hl · nq + i: query i of the tile under the hl-th head of the group.
  template <class Rows>
  static void tile(const ForwardCtx<T>& c, const Tile& tile, T* qs, T* acc, T* packed, T* s, T* m, T* l,
                   int64_t* visible) {
    const AttentionDims& d = c.dims;
    const int64_t D = kD > 0 ? kD : d.headDim;
    const int64_t H = d.heads, nq = tile.count, rows = c.group * nq;
    const int64_t start = c.cu[tile.b];
    const int64_t offset = c.qOffset ? c.qOffset[tile.b] : 0;
    const int64_t keys = c.kvLens ? c.kvLens[tile.b] : c.cu[tile.b + 1] - start;
    const KvView kv = kvView(d, c.cu, tile.b, tile.g);
    const T scale = static_cast<T>(d.scale);
    int64_t keyEnd = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r % nq, h = tile.g * c.group + r / nq;
      const T* src = c.q + ((start + tile.first + i) * H + h) * D;
      for (int64_t x = 0; x < D; ++x) qs[r * D + x] = src[x] * scale;
      std::fill(acc + r * D, acc + (r + 1) * D, T(0));
      m[r] = kMinusInf<T>;
      l[r] = 0;
      visible[r] = visibleKeys(d.causal, offset + tile.first + i, keys);
      keyEnd = std::max(keyEnd, visible[r]);
    }
    for (int64_t j0 = 0; j0 < keyEnd; j0 += kBlockK) {
      const int64_t nk = std::min(kBlockK, keyEnd - j0);
      packTransposed(c.k + kv.base + j0 * kv.ld, kv.ld, nk, D, packed);
      const T* vBlock = c.v + kv.base + j0 * kv.ld;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t count = std::min(visible[r] - j0, nk);
        if (count <= 0) continue;
        Rows::template score<kD>(qs + r * D, packed, D, s);
        Rows::mask(s, count);
        const T mNew = std::max(m[r], Rows::max(s));
        const T sum = Rows::exp(s, mNew);
        // Rescale what was summed under the old max (e^-inf = 0 on the first block).
        const T alpha = std::exp(m[r] - mNew);
        T* o = acc + r * D;
        if (alpha != T(1)) {
          for (int64_t x = 0; x < D; ++x) o[x] *= alpha;
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mNew;
        Rows::template accumulate<kD>(s, 1, vBlock, kv.ld, count, D, o);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r % nq, h = tile.g * c.group + r / nq, token = start + tile.first + i;
      T* dst = c.out + (token * H + h) * D;
      // l >= 1 whenever a key was visible (the max contributes e^0); l = 0 means none was.
      const T inv = l[r] > 0 ? T(1) / l[r] : T(0);
      for (int64_t x = 0; x < D; ++x) dst[x] = acc[r * D + x] * inv;
      c.lse[h * d.tokens + token] = l[r] > 0 ? static_cast<T>(m[r] + std::log(l[r])) : kMinusInf<T>;
    }
  }
};

}  // namespace

template <typename T>
void attentionForward(const AttentionDims& dims, const char* op, const T* q, const T* k, const T* v,
                      const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, T* out, T* lse) {
  checkAttentionIndices(dims, op, cuSeqlens, qOffset, kvLens);
  ForwardCtx<T> ctx{dims, dims.heads / dims.kvHeads, q, k, v, cuSeqlens, qOffset, kvLens, out, lse, {}};
  ctx.tiles = queryTiles(dims, cuSeqlens, qOffset, kvLens);
  runWorkers(static_cast<int64_t>(ctx.tiles.size()), pickWorker<ForwardWorker, T>(dims.headDim), ctx);
}

template void attentionForward<float>(const AttentionDims&, const char*, const float*, const float*, const float*,
                                      const int32_t*, const int32_t*, const int32_t*, float*, float*);
template void attentionForward<double>(const AttentionDims&, const char*, const double*, const double*,
                                       const double*, const int32_t*, const int32_t*, const int32_t*, double*, double*);

void checkKvCacheIndices(const AttentionDims& d, const char* op, const int32_t* cu, const int32_t* offsets) {
  checkSeqlens(op, cu, d.batch, d.tokens);
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t len = cu[b + 1] - cu[b];
    if (offsets[b] < 0 || offsets[b] + len > d.maxTokens) {
      fail(code::kIndex, op, ": sequence ", b, " writes positions [", offsets[b], ", ", offsets[b] + len,
           ") outside the cache's ", d.maxTokens);
    }
  }
}

void kvCacheWrite(const AttentionDims& d, const char* op, void* cache, const void* values, size_t elementSize,
                  const int32_t* cu, const int32_t* offsets) {
  checkKvCacheIndices(d, op, cu, offsets);
  const size_t rowBytes = static_cast<size_t>(d.headDim) * elementSize;
  char* dst = static_cast<char*>(cache);
  const char* src = static_cast<const char*>(values);
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t t = cu[b]; t < cu[b + 1]; ++t) {
      const int64_t position = offsets[b] + (t - cu[b]);
      for (int64_t g = 0; g < d.kvHeads; ++g) {
        // memmove: a caller may pass a view of the cache itself as the values.
        std::memmove(dst + ((b * d.kvHeads + g) * d.maxTokens + position) * rowBytes,
                     src + (t * d.kvHeads + g) * rowBytes, rowBytes);
      }
    }
  }
}

}  // namespace seqtune::cpu
