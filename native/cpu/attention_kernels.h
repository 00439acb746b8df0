// Building blocks shared by the attention forward (attention.cpp) and backward
// (attention_backward.cpp): block sizes, the row kernels, and how work is spread over threads.
// The dot-product kernels are plain loops over a fixed block of keys (or a fixed head dim) that
// the compiler vectorises without reassociating any sum: each lane accumulates its own element in
// a fixed order. The softmax steps on a score row come in two builds: PortableRows (any T, libm's
// exp) and, for f32 on AVX2 CPUs, Avx2Rows (attention_avx2.h).
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "native/cpu/attention.h"
#include "native/cpu/avx2_math.h"
#include "native/runtime/thread_pool.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SEQTUNE_ATTN_X86 1
// Workers built for AVX2+FMA; `flatten` pulls the row kernels into them so they get the same ISA.
#define SEQTUNE_ATTN_AVX2 __attribute__((target("avx2,fma"), flatten))
#endif

namespace seqtune::cpu::attn {

constexpr int64_t kBlockK = 64;  // keys per block: one score row is 8 AVX2 registers of f32
constexpr int64_t kBlockQ = 32;  // queries per tile (times the heads of a kv group)

// Key j of document b and kv head g sits at k + base + j * ld (elements).
struct KvView {
  int64_t base;
  int64_t ld;
};

inline KvView kvView(const AttentionDims& d, const int32_t* cuSeqlens, int64_t b, int64_t g) {
  if (d.maxTokens > 0) return {(b * d.kvHeads + g) * d.maxTokens * d.headDim, d.headDim};
  return {(static_cast<int64_t>(cuSeqlens[b]) * d.kvHeads + g) * d.headDim, d.kvHeads * d.headDim};
}

// Keys [0, result) are visible to the query at `position` of a sequence with `keys` keys.
inline int64_t visibleKeys(bool causal, int64_t position, int64_t keys) {
  return causal ? std::min(position + 1, keys) : keys;
}

// One task: rows [first, first + count) (queries or keys) of document b under kv head g.
struct Tile {
  int64_t b, g, first, count;
};

// The tiles in the order threads claim them: costliest first, so the threads finish together.
inline std::vector<Tile> costliestFirst(std::vector<std::pair<int64_t, Tile>> costed) {
  std::stable_sort(costed.begin(), costed.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  std::vector<Tile> tiles;
  tiles.reserve(costed.size());
  for (const auto& c : costed) tiles.push_back(c.second);
  return tiles;
}

template <typename T>
constexpr T kMinusInf = -std::numeric_limits<T>::infinity();

// dst[d · kBlockK + j] = src[j · ld + d] for j < n, zero for n <= j < kBlockK.
template <typename T>
inline void packTransposed(const T* src, int64_t ld, int64_t n, int64_t dims, T* dst) {
  for (int64_t j = 0; j < n; ++j) {
    const T* row = src + j * ld;
    for (int64_t d = 0; d < dims; ++d) dst[d * kBlockK + j] = row[d];
  }
  for (int64_t d = 0; d < dims; ++d) std::fill(dst + d * kBlockK + n, dst + (d + 1) * kBlockK, T(0));
}

// s[j] = Σ_d x[d] · packed[d · kBlockK + j] for every j of the block.
template <typename T, int kD>
inline void scoreRow(const T* __restrict x, const T* __restrict packed, int64_t dims, T* __restrict s) {
  const int64_t D = kD > 0 ? kD : dims;
  for (int j = 0; j < kBlockK; ++j) s[j] = 0;
  for (int64_t d = 0; d < D; ++d) {
    const T xd = x[d];
    const T* row = packed + d * kBlockK;
    for (int j = 0; j < kBlockK; ++j) s[j] += xd * row[j];
  }
}

// o[d] += Σ_{j<n} w[j · ldw] · x[j · ldx + d]. With restrict (and kD fixed) o stays in registers.
template <typename T, int kD>
inline void accumulateRows(const T* __restrict w, int64_t ldw, const T* __restrict x, int64_t ldx, int64_t n,
                           int64_t dims, T* __restrict o) {
  const int64_t D = kD > 0 ? kD : dims;
  for (int64_t j = 0; j < n; ++j) {
    const T wj = w[j * ldw];
    const T* row = x + j * ldx;
    for (int64_t d = 0; d < D; ++d) o[d] += wj * row[d];
  }
}

// The row kernels in plain C++ (any T): the softmax steps on one block of kBlockK scores,
// scoreRow, accumulateRows and their use for key gradients.
struct PortableRows {
  template <int kD, typename T>
  static void score(const T* x, const T* packed, int64_t dims, T* s) {
    scoreRow<T, kD>(x, packed, dims, s);
  }
  template <int kD, typename T>
  static void accumulate(const T* w, int64_t ldw, const T* x, int64_t ldx, int64_t n, int64_t dims, T* o) {
    accumulateRows<T, kD>(w, ldw, x, ldx, n, dims, o);
  }
  // acc[j · D + d] += Σ_{r<rows} w[r · kBlockK + j] · x[r · ldx + d] for j < n: a block of key
  // gradients from a block of query rows, each key's sum running over r in order.
  template <int kD, typename T>
  static void accumulateOuter(const T* w, const T* x, int64_t ldx, int64_t rows, int64_t n, int64_t dims, T* acc) {
    const int64_t D = kD > 0 ? kD : dims;
    for (int64_t j = 0; j < n; ++j) accumulateRows<T, kD>(w + j, kBlockK, x, ldx, rows, D, acc + j * D);
  }
  // s[j] = -inf for j >= count, so that e^(s[j] - anything) = 0 there.
  template <typename T>
  static void mask(T* s, int64_t count) {
    for (int64_t j = count; j < kBlockK; ++j) s[j] = kMinusInf<T>;
  }
  template <typename T>
  static T max(const T* s) {
    T m = s[0];
    for (int j = 1; j < kBlockK; ++j) m = s[j] > m ? s[j] : m;
    return m;
  }
  // s[j] = e^(s[j] - shift); returns the row's sum.
  template <typename T>
  static T exp(T* s, T shift) {
    T sum = 0;
    for (int j = 0; j < kBlockK; ++j) {
      s[j] = std::exp(s[j] - shift);
      sum += s[j];
    }
    return sum;
  }
};

// Runs `worker(ctx, next)` on up to cpuThreadCount() threads; workers claim task indices from
// `next`. Tasks write disjoint outputs, so which thread runs one never changes the result.
template <typename Ctx>
void runWorkers(int64_t tasks, void (*worker)(const Ctx&, std::atomic<int64_t>&), const Ctx& ctx) {
  std::atomic<int64_t> next{0};
  parallelFor(std::min<int64_t>(cpuThreadCount(), tasks), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) worker(ctx, next);
  });
}

// The worker of W (a class template over <T, kD> with static run / runAvx2) for head dim D: the
// head dims of the demo presets (16, 24, 32) and of LLaMA models (64, 128) get fixed-size inner
// loops, which keep a row's output in registers (at D = 24 the run-time loop costs about a third
// of the attention time); f32 gets the AVX2 build when allowed.
template <template <typename, int> class W, typename T, int kD, int... kMore>
auto pickFixed(int64_t headDim, bool avx2) {
  using Fn = decltype(&W<T, 0>::run);
#ifdef SEQTUNE_ATTN_X86
  if (headDim == kD) return avx2 ? static_cast<Fn>(&W<T, kD>::runAvx2) : static_cast<Fn>(&W<T, kD>::run);
  if constexpr (sizeof...(kMore) > 0) return pickFixed<W, T, kMore...>(headDim, avx2);
  return avx2 ? static_cast<Fn>(&W<T, 0>::runAvx2) : static_cast<Fn>(&W<T, 0>::run);
#else
  if (headDim == kD) return static_cast<Fn>(&W<T, kD>::run);
  if constexpr (sizeof...(kMore) > 0) return pickFixed<W, T, kMore...>(headDim, avx2);
  return static_cast<Fn>(&W<T, 0>::run);
#endif
}

template <template <typename, int> class W, typename T>
auto pickWorker(int64_t headDim) {
  using Fn = decltype(&W<T, 0>::run);
  if constexpr (std::is_same_v<T, double>) {
    return static_cast<Fn>(&W<T, 0>::run);
  } else {
    return pickFixed<W, T, 16, 24, 32, 64, 128>(headDim, avx2Enabled());
  }
}

}  // namespace seqtune::cpu::attn
