// The backward's kernel bodies and parameters (flash_attention_bwd.cu and flash_attention_bwd_dq.cu
// launch them; the host test runs them under an emulator). With P recomputed from the forward's
// lse, dP = dO·Vᵀ and Di = rowsum(dO ∘ O): dS = P ∘ (dP - Di), dV = Pᵀ·dO, dK = scale · dSᵀ·Q,
// dQ = scale · dS·K. The key-block pass: a CTA owns kBN keys of one kv head of one document and
// walks the query tiles that see them, head by head of its group, so dK and dV stay in registers
// and are written once (summed over the group's heads, then the query tiles, in a fixed order). It
// works in the transposed frame (keys as rows): Sᵀ = K·Qᵀ, whose accumulators become the A operand
// of Pᵀ·dO and dSᵀ·Q with no trip through shared memory.
#pragma once
#include <cstdint>

#include "kernels/attention/flash_attention.h"
#include "kernels/attention/flash_attention_mma.cuh"

namespace seqtune::gpu::attn {

// Device pointers of one backward call (type-erased: the kernels cast them to T).
struct BwdArgs {
  const void *q, *k, *v, *dout;
  void *dq, *dk, *dv;
  float* lse2;     // [H, T]: lse · log2(e), +inf for a query that saw no key (written by the preprocess)
  float* di;       // [H, T]: rowsum(dout ∘ out)
  float* dqAccum;  // [T, H, D], zeroed: the fast mode's dQ sums; null in deterministic mode
  const int32_t* cu;
};

template <typename T>
struct BwdParams {
  const T *q, *k, *v, *dout;
  T *dq, *dk, *dv;
  const float *lse2, *di;
  float* dqAccum;
  const int32_t* cu;
  int64_t tokens;
  int batch, heads, kvHeads;
  float scaleLog2, scale;
  bool causal;
};

template <typename T>
BwdParams<T> bwdParams(const AttentionShape& s, const BwdArgs& a, float scaleLog2) {
  return {static_cast<const T*>(a.q),
          static_cast<const T*>(a.k),
          static_cast<const T*>(a.v),
          static_cast<const T*>(a.dout),
          static_cast<T*>(a.dq),
          static_cast<T*>(a.dk),
          static_cast<T*>(a.dv),
          a.lse2,
          a.di,
          a.dqAccum,
          a.cu,
          s.tokens,
          static_cast<int>(s.batch),
          static_cast<int>(s.heads),
          static_cast<int>(s.kvHeads),
          scaleLog2,
          static_cast<float>(s.scale),
          s.causal};
}

// kBN keys per CTA (4 warps of 16), query tiles of kBM. dK and dV hold D / 2 registers each per
// thread, so at D = 128 the query tile shrinks to 32 to stay within 255 without spilling.
template <int D>
struct BwdConfig {
  static constexpr int kBN = 64, kBM = D == 64 ? 64 : 32, kWarps = 4, kThreads = 32 * kWarps;
  static constexpr int kDsWidth = 64;  // dSᵀ tile [kBN][kBM], padded to the swizzle's 64 columns
  // K, V; Q and dO two stages each; dSᵀ; then f32 lse2 and Di, two stages each.
  static constexpr int kElems = 2 * kBN * D + 4 * kBM * D + kBN * kDsWidth;
  static constexpr size_t kSmemBytes = kElems * 2 + 4 * kBM * 4;
};

// Di[h, t] = Σ_d dout·out and lse2[h, t] = lse·log2(e) (+inf where lse = -inf, so P = 0 there):
// D / 8 lanes per row, 16 bytes each.
template <typename T, int D>
__device__ __forceinline__ void preprocessRows(float* di, float* lse2, const T* dout, const T* out, const float* lse,
                                               int64_t tokens, int heads) {
  constexpr int kLanes = D / 8;
  const int64_t rows = tokens * heads;
  // Whole warps iterate together so that the shuffles below always see all 32 lanes.
  const int64_t padded = (rows * kLanes + 31) / 32 * 32, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < padded; i += stride) {
    const int64_t row = i / kLanes;
    const int part = static_cast<int>(i % kLanes);
    float sum = 0.f;
    if (row < rows) {
      float x[8], y[8];
      unpack8<T>(*reinterpret_cast<const uint4*>(dout + row * D + 8 * part), x);
      unpack8<T>(*reinterpret_cast<const uint4*>(out + row * D + 8 * part), y);
#pragma unroll
      for (int e = 0; e < 8; ++e) sum += x[e] * y[e];
    }
#pragma unroll
    for (int o = kLanes / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (row < rows && part == 0) {
      const int64_t at = (row % heads) * tokens + row / heads;  // [T, H] -> [H, T]
      di[at] = sum;
      lse2[at] = lse[at] == -INFINITY ? INFINITY : lse[at] * kLog2e;
    }
  }
}

// One CTA: keys [64 b, 64 b + 64) of kv head blockIdx.y of the document that virtual block
// gridDim.x - 1 - blockIdx.x falls in. smem: BwdConfig::kSmemBytes of dynamic shared memory.
template <typename T, int D, bool kAtomicDq>
__device__ __forceinline__ void keyBlockTile(const BwdParams<T> p, T* smem) {
  using C = BwdConfig<D>;
  constexpr int kNTq = C::kBM / 8, kDT = D / 8;
  const uint32_t sK = smemAddress(smem), sV = sK + 2 * C::kBN * D, sQ = sV + 2 * C::kBN * D;
  constexpr uint32_t kStage = 2 * C::kBM * D;
  const uint32_t sDo = sQ + 2 * kStage, sDs = sDo + 2 * kStage;
  float* sLse = reinterpret_cast<float*>(smem + C::kElems);  // [2][kBM], then Di [2][kBM]
  float* sDi = sLse + 2 * C::kBM;

  const BlockSlot slot = findBlock(p.cu, p.batch, C::kBN, gridDim.x - 1 - int64_t(blockIdx.x));
  if (slot.block < 0) return;
  const Sequence s = sequenceOf(p.cu, nullptr, nullptr, slot.doc, p.tokens, 0);
  const int k0 = slot.block * C::kBN;
  if (!s.ok || k0 >= s.len) return;
  const int g = blockIdx.y, group = p.heads / p.kvHeads;
  const int nk = min(C::kBN, s.len - k0);
  const TileRange tiles = queryTilesOf(p.causal, s, k0, nk, C::kBM);
  const int steps = group * tiles.count;
  const int64_t qLd = int64_t(p.heads) * D, kvLd = int64_t(p.kvHeads) * D;
  const int64_t kvRow = (int64_t(s.start) + k0) * kvLd + int64_t(g) * D;

  // Step n: head g·group + n / count, query tile first + n % count.
  auto loadStep = [&](int n) {
    const int h = g * group + n / tiles.count, i0 = (tiles.first + n % tiles.count) * C::kBM;
    const int valid = s.len - i0, stage = n & 1;
    const int64_t row = (int64_t(s.start) + i0) * qLd + int64_t(h) * D;
    loadTile<C::kBM, D, C::kThreads>(sQ + stage * kStage, p.q + row, qLd, valid);
    loadTile<C::kBM, D, C::kThreads>(sDo + stage * kStage, p.dout + row, qLd, valid);
    if (threadIdx.x < C::kBM) {
      const int64_t at = int64_t(h) * p.tokens + s.start + i0 + threadIdx.x;
      const bool ok = int(threadIdx.x) < valid;
      cpAsync4(smemAddress(sLse + stage * C::kBM + threadIdx.x), ok ? p.lse2 + at : p.lse2, ok ? 4 : 0);
      cpAsync4(smemAddress(sDi + stage * C::kBM + threadIdx.x), ok ? p.di + at : p.di, ok ? 4 : 0);
    }
  };
  loadTile<C::kBN, D, C::kThreads>(sK, p.k + kvRow, kvLd, nk);
  loadTile<C::kBN, D, C::kThreads>(sV, p.v + kvRow, kvLd, nk);
  if (steps > 0) loadStep(0);
  cpAsyncCommit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, key0 = 16 * warp;
  float dk[1][kDT][4] = {}, dv[1][kDT][4] = {};
  for (int n = 0; n < steps; ++n) {
    if (n + 1 < steps) {
      loadStep(n + 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const int stage = n & 1, h = g * group + n / tiles.count, i0 = (tiles.first + n % tiles.count) * C::kBM;
    const bool masked = !queryTileUnmasked(p.causal, s, i0, C::kBM, k0, C::kBN);
    const float* lse2 = sLse + stage * C::kBM;
    const float* di = sDi + stage * C::kBM;

    float pt[1][kNTq][4] = {};  // Sᵀ, then Pᵀ
    gemmSmemSmem<T, 1, kNTq, D, D, D>(pt, sK, key0, sQ + stage * kStage);
    float dst[1][kNTq][4] = {};  // dPᵀ, then dSᵀ
    gemmSmemSmem<T, 1, kNTq, D, D, D>(dst, sV, key0, sDo + stage * kStage);
#pragma unroll
    for (int nt = 0; nt < kNTq; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const RowCol rc = accAt(lane, e);
        const int q = 8 * nt + rc.col;
        float pe = exp2Fast(pt[0][nt][e] * p.scaleLog2 - lse2[q]);
        if (masked && !attends(p.causal, s, i0 + q, k0 + key0 + rc.row)) pe = 0.f;
        pt[0][nt][e] = pe;
        dst[0][nt][e] = pe * (dst[0][nt][e] - di[q]);
      }
    }
    uint32_t fa[1][kNTq / 2][4];
    accToA<T, kNTq>(fa[0], pt[0]);
    gemmRegSmem<T, 1, kDT, kNTq / 2, D>(dv, fa, sDo + stage * kStage);
    accToA<T, kNTq>(fa[0], dst[0]);
    gemmRegSmem<T, 1, kDT, kNTq / 2, D>(dk, fa, sQ + stage * kStage);

    if constexpr (kAtomicDq) {
      // dSᵀ through shared memory, then dQ = dS·K split over the warps: m-tile warp % kMq, n-tile
      // pairs warp / kMq + kSplit j.
      T* ds = smem + (sDs - sK) / 2;
#pragma unroll
      for (int nt = 0; nt < kNTq; ++nt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const RowCol rc = accAt(lane, 2 * half);
          *reinterpret_cast<uint32_t*>(ds + swizzle(key0 + rc.row, 8 * nt + rc.col, C::kDsWidth)) =
              pack2<T>(dst[0][nt][2 * half], dst[0][nt][2 * half + 1]);
        }
      }
      __syncthreads();
      constexpr int kMq = C::kBM / 16, kSplit = C::kWarps / kMq;
      const int mt = warp % kMq;
      uint32_t fds[C::kBN / 16][4];
#pragma unroll
      for (int kk = 0; kk < C::kBN / 16; ++kk) {
        const RowCol rc = ldATrans(lane, 16 * mt, 16 * kk);
        ldmatrixX4<true>(fds[kk], sDs + 2 * swizzle(rc.row, rc.col, C::kDsWidth));
      }
      // Rolled: unrolled, the hoisted addresses spill at D = 128 (dK and dV hold 128 registers).
#pragma unroll 1
      for (int np = warp / kMq; np < D / 16; np += kSplit) {
        float acc[2][4] = {};
#pragma unroll
        for (int kk = 0; kk < C::kBN / 16; ++kk) {
          uint32_t fb[4];
          const RowCol rc = ldBTrans(lane, 16 * kk, 16 * np);
          ldmatrixX4<true>(fb, sK + 2 * swizzle(rc.row, rc.col, D));
          mma16816<T>(acc[0], fds[kk], fb[0], fb[1]);
          mma16816<T>(acc[1], fds[kk], fb[2], fb[3]);
        }
#pragma unroll
        for (int t2 = 0; t2 < 2; ++t2) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const RowCol rc = accAt(lane, 2 * half);
            const int q = 16 * mt + rc.row;
            if (i0 + q >= s.len) continue;
            float* target = p.dqAccum + ((int64_t(s.start) + i0 + q) * p.heads + h) * D + 16 * np + 8 * t2 + rc.col;
#if __CUDA_ARCH__ >= 900
            atomicAdd(reinterpret_cast<float2*>(target), make_float2(acc[t2][2 * half], acc[t2][2 * half + 1]));
#else
            atomicAdd(target, acc[t2][2 * half]);
            atomicAdd(target + 1, acc[t2][2 * half + 1]);
#endif
          }
        }
      }
    }
    __syncthreads();  // this step's stage (and dSᵀ) is refilled next
  }
  if (steps == 0) {  // other threads' K, V copies may still land in the rows reused below
    cpAsyncWait<0>();
    __syncthreads();
  }
  // Each warp stages its own 16 key rows of the K and V tiles.
  const float dkScale[1][2] = {{p.scale, p.scale}}, one[1][2] = {{1.f, 1.f}};
  const int64_t out = kvRow + key0 * kvLd;
  storeRows<T, 1, kDT, D>(dk, dkScale, smem, key0, p.dk + out, kvLd, nk - key0);
  storeRows<T, 1, kDT, D>(dv, one, smem + C::kBN * D, key0, p.dv + out, kvLd, nk - key0);
}

// dq = scale · dqAccum, 4 elements per thread.
template <typename T>
__device__ __forceinline__ void convertDq(T* dq, const float* acc, int64_t n, float scale) {
  const int64_t stride = 4 * int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = 4 * (int64_t(blockIdx.x) * blockDim.x + threadIdx.x); i < n; i += stride) {
    const float4 a = *reinterpret_cast<const float4*>(acc + i);
    uint2 packed{pack2<T>(a.x * scale, a.y * scale), pack2<T>(a.z * scale, a.w * scale)};
    *reinterpret_cast<uint2*>(dq + i) = packed;
  }
}

// dq = scale · Σ_j dS_ij k_j per (query block, head, document), key tiles summed in order.
void launchDeterministicDq(const AttentionShape& shape, DType dtype, const BwdArgs& args, cudaStream_t stream);

}  // namespace seqtune::gpu::attn
