// The forward kernel's body (flash_attention_fwd.cu launches it; the host test runs it under an
// emulator). FlashAttention-2 style: a CTA owns a block of kBM queries of one head of one document
// and walks the key tiles it can see; each warp keeps its queries' running max m, sum l and
// unnormalised output O in registers and rescales them as the max grows, so no T x T matrix
// exists. K and V tiles are double-buffered with cp.async (tile t + 1 loads while tile t is used),
// in XOR-swizzled shared memory that ldmatrix reads without bank conflicts. Scores enter exp2
// pre-multiplied by scale · log2(e).
#pragma once
#include <cstdint>

#include "kernels/attention/flash_attention_mma.cuh"

namespace seqtune::gpu::attn {

// kBM queries per CTA, kWarps warps of kBM / kWarps rows (kMT m-tiles of 16) each, kBN keys per tile.
// D = 64: 32 rows per warp halve the shared-memory reads of K and V per FLOP (240 registers, 2 CTAs
// per SM). D = 128: 16 rows per warp, 8 warps (202 registers; 32 rows spill at 255).
template <int D>
struct FwdConfig {
  static constexpr int kBM = 128, kBN = 64, kWarps = D == 64 ? 4 : 8, kThreads = 32 * kWarps;
  static constexpr int kRowsPerWarp = kBM / kWarps, kMT = kRowsPerWarp / 16;
  static constexpr int kSmemElems = kBM * D + 4 * kBN * D;  // Q, then K and V, two stages each
  static constexpr size_t kSmemBytes = kSmemElems * 2;
};

template <typename T>
struct FwdParams {
  const T *q, *k, *v;
  T* out;
  float* lse;
  const int32_t *cu, *qOffset, *kvLens;  // qOffset, kvLens: cache layout only
  int64_t tokens, maxTokens;
  int batch, heads, kvHeads;
  float scaleLog2;
  bool causal;
};

// One CTA: queries [128 b, 128 b + 128) of head blockIdx.y of the document that virtual block
// gridDim.x - 1 - blockIdx.x falls in. smem: FwdConfig::kSmemBytes of dynamic shared memory.
template <typename T, int D>
__device__ __forceinline__ void forwardTile(const FwdParams<T>& p, T* smem) {
  using C = FwdConfig<D>;
  constexpr int kNT = C::kBN / 8, kDT = D / 8, kMT = C::kMT;
  const uint32_t sQ = smemAddress(smem), sK = sQ + 2 * C::kBM * D, sV = sK + 2 * 2 * C::kBN * D;
  constexpr uint32_t kStage = 2 * C::kBN * D;  // bytes per K (or V) stage

  // The last virtual blocks go first: under a causal mask they are a document's costliest.
  const BlockSlot slot = findBlock(p.cu, p.batch, C::kBM, gridDim.x - 1 - int64_t(blockIdx.x));
  if (slot.block < 0) return;
  const Sequence s = sequenceOf(p.cu, p.qOffset, p.kvLens, slot.doc, p.tokens, p.maxTokens);
  const int q0 = slot.block * C::kBM;
  if (!s.ok || q0 >= s.len) return;
  const int h = blockIdx.y, g = kvHeadOf(h, p.heads, p.kvHeads);
  const int nq = min(C::kBM, s.len - q0);
  const TileRange tiles = keyTilesOf(p.causal, s, q0, C::kBM, C::kBN);
  const int keyEnd = tiles.count > 0 ? keyLimit(p.causal, s, q0 + nq - 1) : 0;

  const int64_t qLd = int64_t(p.heads) * D;
  const T* qRows = p.q + (int64_t(s.start) + q0) * qLd + int64_t(h) * D;
  // Key j of this sequence and kv head: kv + kvBase + j * kvLd.
  const int64_t kvLd = p.kvLens ? D : int64_t(p.kvHeads) * D;
  const int64_t kvBase = p.kvLens ? (int64_t(slot.doc) * p.kvHeads + g) * p.maxTokens * D
                                  : int64_t(s.start) * kvLd + int64_t(g) * D;

  auto loadKv = [&](int t) {
    const int j0 = t * C::kBN, valid = keyEnd - j0;
    const uint32_t stage = (t & 1) * kStage;
    loadTile<C::kBN, D, C::kThreads>(sK + stage, p.k + kvBase + j0 * kvLd, kvLd, valid);
    loadTile<C::kBN, D, C::kThreads>(sV + stage, p.v + kvBase + j0 * kvLd, kvLd, valid);
  };
  loadTile<C::kBM, D, C::kThreads>(sQ, qRows, qLd, nq);
  if (tiles.count > 0) loadKv(0);
  cpAsyncCommit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int row0 = warp * C::kRowsPerWarp;
  // This thread's rows: row0 + 16 mt + lane / 4 + 8 half. limit: keys it may see (0: padding).
  int limit[kMT][2];
  float m[kMT][2], l[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + 16 * mt + accAt(lane, 2 * half).row;
      limit[mt][half] = r < nq ? keyLimit(p.causal, s, q0 + r) : 0;
      m[mt][half] = -INFINITY;
      l[mt][half] = 0.f;
    }
  }
  float o[kMT][kDT][4] = {};

  for (int t = 0; t < tiles.count; ++t) {
    if (t + 1 < tiles.count) {
      loadKv(t + 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const uint32_t stage = (t & 1) * kStage;

    float sc[kMT][kNT][4] = {};
    gemmSmemSmem<T, kMT, kNT, D, D, D>(sc, sQ, row0, sK + stage);

    float alpha[kMT][2];
    softmaxTile<kMT, kNT>(sc, m, l, alpha, limit, t >= tiles.unmasked, t * C::kBN, p.scaleLog2);
    rescaleRows<kMT, kDT>(o, alpha);

    uint32_t pa[kMT][kNT / 2][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) accToA<T, kNT>(pa[mt], sc[mt]);
    gemmRegSmem<T, kMT, kDT, kNT / 2, D>(o, pa, sV + stage);
    __syncthreads();  // the stage is refilled by the next iteration's prefetch
  }
  if (tiles.count == 0) {  // the Q copies of other threads may still land in rows reused below
    cpAsyncWait<0>();
    __syncthreads();
  }

  float inv[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float total = quadSum(l[mt][half]);
      inv[mt][half] = total > 0.f ? 1.f / total : 0.f;
      const int r = row0 + 16 * mt + accAt(lane, 2 * half).row;
      if ((lane & 3) == 0 && r < nq) {
        p.lse[int64_t(h) * p.tokens + s.start + q0 + r] =
            total > 0.f ? (m[mt][half] + log2f(total)) * kLn2 : -INFINITY;
      }
    }
  }
  // The warp's own Q rows (only it reads them) stage the output for 16-byte stores.
  storeRows<T, kMT, kDT, D>(o, inv, smem, row0, p.out + (qRows - p.q) + row0 * qLd, qLd, nq - row0);
}

}  // namespace seqtune::gpu::attn
