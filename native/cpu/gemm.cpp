// Blocked GEMM in the BLIS layout: for each NC-column block and KC-deep slice of K, op(B) is packed
// once into NR-wide panels (shared by all threads), then each thread packs MC x KC blocks of op(A)
// into MR-high panels and runs the micro-kernel (gemm_kernels.h) over its part of the output. The
// packing absorbs the transposes, so one kernel serves all four combinations. When few B panels
// reuse an A block (narrow products: a small model's layers), packing it costs a large share of
// the product, so the kernel reads its full MR-row panels in place and only a partial last panel
// is packed.
//
// Determinism: every element of C is accumulated over the same fixed KC slices in k order by one
// kernel call per slice, whatever the partition; threads only choose which tiles they compute.
#include <algorithm>
#include <memory>
#include <new>

#include "native/cpu/gemm.h"
#include "native/cpu/gemm_kernels.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

struct Blocking {
  int64_t mc;  // rows of op(A) packed at a time (kept in L2); a multiple of MR
  int64_t kc;  // depth of a slice (a B panel, kc x NR, stays in L1)
  int64_t nc;  // columns of op(B) packed at a time (kept in L3); a multiple of NR
};

constexpr Blocking kBlockF32{144, 256, 4080};
constexpr Blocking kBlockF64{96, 256, 2040};
// Below this much work per thread, waking the pool (tens of microseconds) costs more than it saves.
constexpr double kMinParallelFlops = 1 << 22;
// Packing B in parallel only pays off for this many elements per thread.
constexpr int64_t kMinParallelPack = 1 << 17;
// Up to this many B panels per block, tiles read op(A) in place: packing an element costs a few
// cycles, about what the kernel spends on it per 3-4 panels, and a block reused this few times
// gains little from the packed copy's locality.
constexpr int64_t kMaxPanelsInPlace = 32;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A grow-only, cache-line-aligned buffer kept per thread, so repeated GEMMs do not reallocate
// (and re-fault) megabytes of packing space.
template <typename T>
class Scratch {
 public:
  T* get(int64_t n) {
    if (n > size_) {
      ptr_.reset(static_cast<T*>(::operator new(static_cast<size_t>(n) * sizeof(T), std::align_val_t(64))));
      size_ = n;
    }
    return ptr_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  std::unique_ptr<T, Free> ptr_;
  int64_t size_ = 0;
};

// Depth [p0, p0+kc) x columns [c0, c0+n) of a matrix stored depth-major (depth step p is a
// contiguous row, read once across all panels) as w-wide panels, w values per depth step,
// zero-padded past column n: op(A) stored [K, M] and op(B) stored [K, N] both pack this way.
template <typename T>
void packDepthMajor(const T* X, int64_t ld, int64_t p0, int64_t kc, int64_t c0, int64_t n, int64_t w, T* dst) {
  for (int64_t p = 0; p < kc; ++p) {
    const T* src = X + (p0 + p) * ld + c0;
    for (int64_t j = 0; j < n; j += w) {
      T* d = dst + j * kc + p * w;
      const int64_t count = std::min(w, n - j);
      for (int64_t c = 0; c < count; ++c) d[c] = src[j + c];
      for (int64_t c = count; c < w; ++c) d[c] = T(0);
    }
  }
}

// Rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) as MR-row panels, each k-major (MR values per k);
// rows past the block are zero so edge tiles run the same kernel.
template <typename T>
void packA(bool transA, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr, T* dst) {
  if (transA) {
    packDepthMajor(A, lda, p0, kc, i0, mc, mr, dst);
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += mr, dst += mr * kc) {
    const int64_t rows = std::min(mr, mc - ir);
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = A + (i0 + ir + r) * lda + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * mr + r] = src[p];
    }
    for (int64_t p = 0; p < kc && rows < mr; ++p) {
      for (int64_t r = rows; r < mr; ++r) dst[p * mr + r] = T(0);
    }
  }
}

// Depth [p0, p0+kc) x columns [j0, j0+ncols) of op(B) as NR-column panels (NR values per k),
// zero-padded past the last column.
template <typename T>
void packB(const GemmKernel<T>& kernel, bool transB, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
           int64_t ncols, T* dst) {
  const int64_t nr = kernel.nr;
  if (!transB) {
    // Reading a panel at a time would stride through memory by whole rows.
    packDepthMajor(B, ldb, p0, kc, j0, ncols, nr, dst);
    return;
  }
  for (int64_t jr = 0; jr < ncols; jr += nr, dst += nr * kc) {
    const int64_t cols = std::min(nr, ncols - jr);
    if (cols == nr) {
      kernel.packTransposedB(B + (j0 + jr) * ldb + p0, ldb, kc, dst);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t c = 0; c < nr; ++c) dst[p * nr + c] = c < cols ? B[(j0 + jr + c) * ldb + p0 + p] : T(0);
      }
    }
  }
}

// Where the tiles of an mc-row block read op(A): the first `inPlace` rows straight from the
// matrix (row i of the block starts at a + i * rowStep; `tile` reads a panel there with `stride`),
// the rest from `packed` (MR-row panels, zero-padded, read by the depth kernel).
template <typename T>
struct ABlock {
  const T* a;
  int64_t rowStep;
  TileKernel<T> tile;
  int64_t stride;
  int64_t inPlace;
  const T* packed;
};

// The block of op(A) at rows [i0, ...) and depth [p0, ...) read in place: op(A) stored [K, M]
// (transA) has each depth step's MR values contiguous, stored [M, K] each row's.
template <typename T>
ABlock<T> inPlaceBlock(const GemmKernel<T>& kernel, bool transA, const T* A, int64_t lda, int64_t i0, int64_t p0,
                       int64_t inPlace, const T* packed) {
  if (transA) return {A + p0 * lda + i0, 1, kernel.tileDepth, lda, inPlace, packed};
  return {A + i0 * lda + p0, lda, kernel.tileRows, lda, inPlace, packed};
}

// Tiles of an mc-row block times NR-panels [panelBegin, panelEnd) of the packed B slice. Edge
// tiles go through a full-size scratch tile so they use the same kernel (and the same rounding).
template <typename T>
void macroKernel(const GemmKernel<T>& kernel, int64_t mc, int64_t panelBegin, int64_t panelEnd, int64_t nc,
                 int64_t kc, const ABlock<T>& ab, const T* bPack, T alpha, T beta, T* C, int64_t ldc) {
  const int64_t mr = kernel.mr, nr = kernel.nr;
  for (int64_t jp = panelBegin; jp < panelEnd; ++jp) {
    const int64_t j = jp * nr;
    const int64_t cols = std::min(nr, nc - j);
    const T* bp = bPack + jp * nr * kc;
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int64_t rows = std::min(mr, mc - ir);
      const bool inPlace = ir < ab.inPlace;
      const T* ap = inPlace ? ab.a + ir * ab.rowStep : ab.packed + (ir - ab.inPlace) * kc;
      const TileKernel<T> tile = inPlace ? ab.tile : kernel.tileDepth;
      const int64_t stride = inPlace ? ab.stride : mr;
      T* c = C + ir * ldc + j;
      if (rows == mr && cols == nr) {
        tile(kc, ap, stride, bp, alpha, beta, c, ldc);
        continue;
      }
      T tileC[kMaxTile] = {};
      if (beta != T(0)) {
        for (int64_t r = 0; r < rows; ++r) std::copy(c + r * ldc, c + r * ldc + cols, tileC + r * nr);
      }
      tile(kc, ap, stride, bp, alpha, beta, tileC, nr);
      for (int64_t r = 0; r < rows; ++r) std::copy(tileC + r * nr, tileC + r * nr + cols, c + r * ldc);
    }
  }
}

// C = beta · C for the cases with no product to add (K == 0 or alpha == 0); beta == 0 clears C
// even when it holds NaN.
template <typename T>
void scaleC(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* row = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
  }
}

template <typename T>
void gemmBlocked(const GemmKernel<T>& kernel, const Blocking& block, bool transA, bool transB, int64_t M, int64_t N,
                 int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scaleC(M, N, beta, C, ldc);
    return;
  }
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t mPanels = ceilDiv(M, mr);
  thread_local Scratch<T> bScratch;
  T* bPack = bScratch.get(block.kc * ceilDiv(std::min(N, block.nc), nr) * nr);

  for (int64_t jc = 0; jc < N; jc += block.nc) {
    const int64_t nc = std::min(block.nc, N - jc);
    const int64_t nPanels = ceilDiv(nc, nr);
    // Split the rows between threads when there are enough of them; small-M products (decoding)
    // split the columns instead, each thread packing the few rows of A itself.
    const bool splitRows = mPanels >= nPanels || mPanels >= 4 * cpuThreadCount();
    const bool inPlace = nPanels <= kMaxPanelsInPlace;
    for (int64_t pc = 0; pc < K; pc += block.kc) {
      const int64_t kc = std::min(block.kc, K - pc);
      const T sliceBeta = pc == 0 ? beta : T(1);  // later slices accumulate onto the first

      parallelFor(nPanels, std::max<int64_t>(1, kMinParallelPack / (kc * nr)), [&](int64_t begin, int64_t end) {
        packB(kernel, transB, B, ldb, pc, kc, jc + begin * nr, std::min(nc, end * nr) - begin * nr, bPack + begin * nr * kc);
      });

      const double panelFlops = 2.0 * static_cast<double>(kc) * static_cast<double>(splitRows ? mr * nc : nr * M);
      const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(kMinParallelFlops / panelFlops));
      parallelFor(splitRows ? mPanels : nPanels, grain, [&](int64_t begin, int64_t end) {
        thread_local Scratch<T> aScratch;
        const int64_t rowBegin = splitRows ? begin * mr : 0;
        const int64_t rowEnd = splitRows ? std::min(M, end * mr) : M;
        const int64_t panelBegin = splitRows ? 0 : begin;
        const int64_t panelEnd = splitRows ? nPanels : end;
        T* aPack = aScratch.get(block.mc * kc);
        for (int64_t ic = rowBegin; ic < rowEnd; ic += block.mc) {
          const int64_t mc = std::min(block.mc, rowEnd - ic);
          const ABlock<T> ab = inPlaceBlock(kernel, transA, A, lda, ic, pc, inPlace ? mc / mr * mr : 0, aPack);
          if (ab.inPlace < mc) packA(transA, A, lda, ic + ab.inPlace, mc - ab.inPlace, pc, kc, mr, aPack);
          macroKernel(kernel, mc, panelBegin, panelEnd, nc, kc, ab, bPack, alpha, sliceBeta, C + ic * ldc + jc, ldc);
        }
      });
    }
  }
}

}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  static const GemmKernel<float> kernel = gemmKernelF32();
  gemmBlocked(kernel, kBlockF32, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  static const GemmKernel<double> kernel = gemmKernelF64();
  gemmBlocked(kernel, kBlockF64, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace seqtune::cpu
