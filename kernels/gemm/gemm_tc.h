// The tensor-core GEMM kernel (bf16/f16 operands, f32 accumulation), included by the .cu files
// that instantiate it with their own epilogue (gemm.cu, lora.cu).
//
// Design, per block of Cfg::THREADS threads computing a BM x BN tile of op(A)·op(B):
// - operands go global -> shared with cp.async (16 B, L1 bypassed) into STAGES buffers, so the
//   copies of the next STAGES - 1 K-steps are in flight while the tensor cores work on this one;
// - tiles keep the operand's global layout (no transposition on the way in) and ldmatrix (.trans
//   for MN-major tiles) hands each lane its mma fragments; the XOR swizzle of gemm_layout.h keeps
//   both the 16-byte stores and every ldmatrix phase free of bank conflicts;
// - ragged edges (M, N, K not multiples of the tile, K splits) are predicated copies with zero
//   fill, so the inner loop has no bounds checks; operands that are not 16-byte aligned use
//   element-wise copies into the same layout (VEC = false: slower, same results);
// - optional dropout on one operand (LoRA's dropout(x)) zeroes dropped elements in shared memory
//   after they land, with the keep decision of the dropout op (kernels/common/philox.h);
// - the epilogue functor receives the f32 accumulators and the free pipeline buffers.
//
// Host compilers see the device code only (the Hopper GEMM's emulated test reuses the epilogue);
// the kernel and its launch exist under nvcc.
#pragma once
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/common/cuda_check.h"
#endif

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "kernels/gemm/gemm_layout.h"
#include "kernels/common/mma_ptx.cuh"
#include "kernels/common/kernel_note.h"
#include "kernels/common/philox.h"

namespace seqtune::gemm {

// ---- PTX -------------------------------------------------------------------------------------------

// The wrappers live in mma_ptx.cuh (shared with the attention kernels); these keep their names here,
// where the epilogues and gemm.cu use them.
using gpu::ptx::cpAsync16;
using gpu::ptx::cpAsyncCommit;
using gpu::ptx::cpAsyncWait;
using gpu::ptx::fromFloat;
using gpu::ptx::ldmatrixX4;
using gpu::ptx::mma16816;
using gpu::ptx::smemAddress;
using gpu::ptx::toFloat;

__device__ __forceinline__ float2 shflXor(float2 v, int mask) {
  return make_float2(__shfl_xor_sync(0xffffffffu, v.x, mask), __shfl_xor_sync(0xffffffffu, v.y, mask));
}

// The epilogue's quad transpose (gemm_layout.h): unit q of lane t becomes unit t of lane q.
__device__ __forceinline__ void quadTranspose(float2 (&u)[4], int lane) {
#pragma unroll
  for (int stage = 1; stage <= 2; stage <<= 1) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      if ((q & stage) != 0) continue;
      transposeReceive(u, lane, stage, q, shflXor(transposeSend(u, lane, stage, q), stage));
    }
  }
}

// ---- parameters ------------------------------------------------------------------------------------

// A stored operand: element (row, col) of batch b at ptr + b·batchStride + row·ld + col.
struct Operand {
  const void* ptr;
  int64_t ld, batchStride;
};

// Inverted dropout's mask on a stored operand: element (row, col) is dropped unless
// dropoutKeep(seed, offset, row·ld + col, p) (its 1/(1 - p) goes into the epilogue's alpha).
struct Dropout {
  uint64_t seed = 0, offset = 0;
  float p = 0;
  int64_t ld = 0;

  __device__ __forceinline__ bool keep(int64_t row, int64_t col) const {
    return dropoutKeep(seed, offset, static_cast<uint64_t>(row * ld + col), p);
  }
};

struct TcParams {
  int64_t M, N, K;
  Operand a, b;
  int tilesM, tilesN;
  int splits;      // blockIdx.z = (batch - batch0) · splits + split
  int64_t batch0;  // first batch of this launch (grid.z is limited to 65535)
  Dropout drop;
};

// Where the epilogue's tile sits, and this thread's place in it.
struct TileCtx {
  int64_t m0, n0, M, N, batch;
  int split, lane, wm, wn;
};

// ---- shared-memory tiles ---------------------------------------------------------------------------

// Copies the tile `t` (zero outside its limits). With VEC the operand must be 16-byte aligned with
// ld a multiple of 8 (checked by the launchers); otherwise elements are read one by one.
template <int THREADS, bool VEC, typename T>
__device__ __forceinline__ void loadTile(T* tile, const T* base, int64_t ld, const TileSpan& t) {
  const int total = t.rows * t.rowChunks;
  const uint32_t tileAddr = smemAddress(tile);
#pragma unroll
  for (int i = 0; i < (total + THREADS - 1) / THREADS; ++i) {
    const RowChunk rc = copyChunk(threadIdx.x, i, THREADS, t.rowChunks);
    if (rc.row >= t.rows) break;
    const int64_t gr = t.row0 + rc.row, gc = t.col0 + static_cast<int64_t>(rc.chunk) * kChunkElems;
    const int n = gr < t.rowLimit ? validElems(gc, t.colLimit) : 0;
    const int idx = chunkIndex(rc.row, rc.chunk, t.rowChunks);
    const T* src = n > 0 ? base + gr * ld + gc : base;
    if constexpr (VEC) {
      cpAsync16(tileAddr + idx * kChunkBytes, src, n * static_cast<int>(sizeof(T)));
    } else {
      const unsigned short* s = reinterpret_cast<const unsigned short*>(src);
      uint32_t packed[4];
#pragma unroll
      for (int e = 0; e < kChunkElems; e += 2) {
        const uint32_t lo = e < n ? s[e] : 0u, hi = e + 1 < n ? s[e + 1] : 0u;
        packed[e / 2] = lo | (hi << 16);
      }
      *reinterpret_cast<uint4*>(tile + idx * kChunkElems) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    }
  }
}

// Zeroes the dropped elements among the chunks this thread copied (same mapping as loadTile).
// Runs after the thread's own copies completed and before the barrier that publishes them.
template <int THREADS, typename T>
__device__ __forceinline__ void dropTile(T* tile, const Dropout& d, const TileSpan& t) {
  const int total = t.rows * t.rowChunks;
#pragma unroll
  for (int i = 0; i < (total + THREADS - 1) / THREADS; ++i) {
    const RowChunk rc = copyChunk(threadIdx.x, i, THREADS, t.rowChunks);
    if (rc.row >= t.rows) break;
    const int64_t gr = t.row0 + rc.row, gc = t.col0 + static_cast<int64_t>(rc.chunk) * kChunkElems;
    if (gr >= t.rowLimit) continue;
    const int n = validElems(gc, t.colLimit);
    uint4* chunk = reinterpret_cast<uint4*>(tile + chunkIndex(rc.row, rc.chunk, t.rowChunks) * kChunkElems);
    uint4 v = *chunk;
    uint32_t* w = reinterpret_cast<uint32_t*>(&v);
#pragma unroll
    for (int e = 0; e < kChunkElems; ++e) {
      if (e < n && !d.keep(gr, gc + e)) w[e / 2] &= (e & 1) ? 0x0000ffffu : 0xffff0000u;
    }
    *chunk = v;
  }
}

// One pipeline stage: the A tile then the B tile, each in its stored layout.
template <class Cfg, bool TA, bool TB>
struct StageLayout {
  static constexpr int A_CHUNKS = (TA ? Cfg::BM : Cfg::BK) / kChunkElems;
  static constexpr int B_CHUNKS = (TB ? Cfg::BK : Cfg::BN) / kChunkElems;
  static constexpr int A_ELEMS = Cfg::BM * Cfg::BK;
  static constexpr int STAGE_ELEMS = (Cfg::BM + Cfg::BN) * Cfg::BK;
};

// Which operand the main loop applies dropout to.
enum Drop : int { kDropNone = 0, kDropA = 1, kDropB = 2 };

// acc += op(A)[m0:+BM, kBegin:kEnd] · op(B)[kBegin:kEnd, n0:+BN]; on return every thread is done
// with the pipeline buffers (the epilogue may reuse them).
template <class Cfg, typename T, bool TA, bool TB, bool VEC, int DROP>
__device__ __forceinline__ void mainLoop(T* smem, const T* A, const T* B, const TcParams& p, int64_t m0, int64_t n0,
                                         int64_t kBegin, int64_t kEnd, int wm, int wn, int lane,
                                         float (&acc)[Cfg::MT][Cfg::NT][4]) {
  using L = StageLayout<Cfg, TA, TB>;
  constexpr int BK = Cfg::BK, S = Cfg::STAGES, THREADS = Cfg::THREADS;
  const int kTiles = static_cast<int>((kEnd - kBegin + BK - 1) / BK);

  auto aTile = [&](int64_t k0) { return operandTile(!TA, Cfg::BM, BK, m0, p.M, k0, kEnd); };
  auto bTile = [&](int64_t k0) { return operandTile(TB, Cfg::BN, BK, n0, p.N, k0, kEnd); };
  auto load = [&](int stage, int64_t k0) {
    T* st = smem + stage * L::STAGE_ELEMS;
    loadTile<THREADS, VEC>(st, A, p.a.ld, aTile(k0));
    loadTile<THREADS, VEC>(st + L::A_ELEMS, B, p.b.ld, bTile(k0));
  };

#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < kTiles) load(s, kBegin + static_cast<int64_t>(s) * BK);
    cpAsyncCommit();  // empty groups keep the group count uniform
  }

  for (int kt = 0; kt < kTiles; ++kt) {
    cpAsyncWait<S - 2>();  // this thread's copies of tile kt have landed
    const int stage = kt % S;
    T* st = smem + stage * L::STAGE_ELEMS;
    const int64_t k0 = kBegin + static_cast<int64_t>(kt) * BK;
    if constexpr (DROP == kDropA) {
      dropTile<THREADS>(st, p.drop, aTile(k0));
    } else if constexpr (DROP == kDropB) {
      dropTile<THREADS>(st + L::A_ELEMS, p.drop, bTile(k0));
    }
    __syncthreads();  // tile kt visible to all; every warp is done with tile kt - 1's buffer
    const int next = kt + S - 1;
    if (next < kTiles) load(next % S, kBegin + static_cast<int64_t>(next) * BK);
    cpAsyncCommit();

    const uint32_t aAddr = smemAddress(st), bAddr = smemAddress(st + L::A_ELEMS);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[Cfg::MT][4], bf[Cfg::NT][2];
#pragma unroll
      for (int mi = 0; mi < Cfg::MT; ++mi) {
        const RowChunk rc = ldmatrixRow(true, !TA, lane, wm + 16 * mi, kk);
        ldmatrixX4<TA>(af[mi], aAddr + chunkIndex(rc.row, rc.chunk, L::A_CHUNKS) * kChunkBytes);
      }
#pragma unroll
      for (int np = 0; np < Cfg::NT / 2; ++np) {
        const RowChunk rc = ldmatrixRow(false, TB, lane, wn + 16 * np, kk);
        uint32_t r[4];
        ldmatrixX4<!TB>(r, bAddr + chunkIndex(rc.row, rc.chunk, L::B_CHUNKS) * kChunkBytes);
        bf[2 * np][0] = r[0];
        bf[2 * np][1] = r[1];
        bf[2 * np + 1][0] = r[2];
        bf[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < Cfg::MT; ++mi) {
#pragma unroll
        for (int ni = 0; ni < Cfg::NT; ++ni) mma16816<T>(acc[mi][ni], af[mi], bf[ni][0], bf[ni][1]);
      }
    }
  }
  cpAsyncWait<0>();
  __syncthreads();
}

// ---- kernel and launch -----------------------------------------------------------------------------

#if defined(__CUDACC__)

template <class Cfg, typename T, bool TA, bool TB, bool VEC, int DROP, class Epi>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS) tcGemmKernel(const TcParams p, const Epi epi) {
  extern __shared__ __align__(128) unsigned char smemRaw[];
  T* smem = reinterpret_cast<T*>(smemRaw);
  int tm, tn;
  rasterTile(blockIdx.x, p.tilesM, p.tilesN, &tm, &tn);
  const int64_t batch = p.batch0 + blockIdx.z / p.splits;
  const int split = static_cast<int>(blockIdx.z % p.splits);
  int64_t kBegin, kEnd;
  splitRange(p.K, Cfg::BK, p.splits, split, &kBegin, &kEnd);
  const T* A = static_cast<const T*>(p.a.ptr) + batch * p.a.batchStride;
  const T* B = static_cast<const T*>(p.b.ptr) + batch * p.b.batchStride;
  const int64_t m0 = static_cast<int64_t>(tm) * Cfg::BM, n0 = static_cast<int64_t>(tn) * Cfg::BN;
  const int lane = threadIdx.x & 31;
  int wm, wn;
  warpOrigin(threadIdx.x >> 5, Cfg::WARPS_N, Cfg::WTM, Cfg::WTN, &wm, &wn);

  float acc[Cfg::MT][Cfg::NT][4];
#pragma unroll
  for (int mi = 0; mi < Cfg::MT; ++mi) {
#pragma unroll
    for (int ni = 0; ni < Cfg::NT; ++ni) {
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[mi][ni][v] = 0.f;
    }
  }
  mainLoop<Cfg, T, TA, TB, VEC, DROP>(smem, A, B, p, m0, n0, kBegin, kEnd, wm, wn, lane, acc);
  epi.template run<Cfg>(smemRaw, acc, TileCtx{m0, n0, p.M, p.N, batch, split, lane, wm, wn});
}

// Launches the kernel over p.tilesM x p.tilesN tiles and `batches` batches from p.batch0.
template <class Cfg, typename T, bool TA, bool TB, bool VEC, int DROP, class Epi>
void launchTc(TcParams p, int64_t batches, const Epi& epi, cudaStream_t stream, const char* what) {
  auto kernel = tcGemmKernel<Cfg, T, TA, TB, VEC, DROP, Epi>;
  // Above 48 KiB a kernel needs an explicit opt-in, once per device.
  static std::atomic<uint64_t> optedIn{0};
  if (Cfg::SMEM_BYTES > 48 * 1024) {
    int device = 0;
    cudaCheck(cudaGetDevice(&device), "cudaGetDevice");
    const uint64_t bit = uint64_t(1) << (device & 63);
    if ((optedIn.load(std::memory_order_relaxed) & bit) == 0) {
      cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM_BYTES),
                "cudaFuncSetAttribute(max dynamic shared memory)");
      optedIn.fetch_or(bit, std::memory_order_relaxed);
    }
  }
  const int64_t tiles = static_cast<int64_t>(p.tilesM) * p.tilesN;
  if (tiles > 0x7fffffff) fail(code::kArgument, what, ": ", tiles, " output tiles exceed the grid limit");
  const int64_t perLaunch = 65535 / p.splits;
  profiler::noteKernel("mma");
  for (int64_t done = 0; done < batches; done += perLaunch) {
    const int64_t n = batches - done < perLaunch ? batches - done : perLaunch;
    TcParams q = p;
    q.batch0 = p.batch0 + done;
    const dim3 grid(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(n * p.splits));
    kernel<<<grid, Cfg::THREADS, Cfg::SMEM_BYTES, stream>>>(q, epi);
    checkLaunch(what);
  }
}

#endif  // __CUDACC__

// The kernel's grid geometry for an M x N output with tile config Cfg.
template <class Cfg>
TcParams tcParams(int64_t M, int64_t N, int64_t K, Operand a, Operand b, int splits) {
  TcParams p{};
  p.M = M;
  p.N = N;
  p.K = K;
  p.a = a;
  p.b = b;
  p.tilesM = static_cast<int>(ceilDiv(M, Cfg::BM));
  p.tilesN = static_cast<int>(ceilDiv(N, Cfg::BN));
  p.splits = splits < 1 ? 1 : splits;
  p.batch0 = 0;
  return p;
}

}  // namespace seqtune::gemm
