// When attentionForward takes the Hopper kernel (hopperAttentionWanted), and the one-time
// self-test that guards it (hopperAttentionSelfTest): the kernel was written without a GPU to run
// it on, so a device only uses it after it reproduced the FlashAttention-2 kernel and a float64
// host reference on fixed problems.
//
// Inputs are multiples of 1/64 in [-1, 1] (exact in bf16 and f16) and most problems use a large
// softmax scale, so each query's weights are concentrated on a few keys: a key or value in the
// wrong place, a missed mask or a lost tile moves the output by far more than the tolerance,
// which covers P's rounding to 16 bits and the output's rounding.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "kernels/flash_attention_hopper.h"
#include "kernels/hopper_selftest.h"
#include "native/runtime/errors.h"

namespace seqtune::gpu {

namespace {

using selftest::DeviceArena;
using selftest::fromHalfBits;
using selftest::isHopper;
using selftest::Rng;
using selftest::toHalfBits;

struct Problem {
  DType dtype;
  int headDim;
  std::vector<int> lens;  // documents; empty and one-token ones included
  int heads, kvHeads;
  bool causal;
  double scale;
};

const Problem kProblems[] = {
    {DType::BF16, 128, {300, 0, 129, 64, 1, 190}, 4, 2, true, 0.5},
    {DType::BF16, 64, {513, 77}, 4, 1, true, 0.5},
    {DType::BF16, 128, {200, 77}, 2, 2, false, 0.08838834764831845},  // 1/sqrt(128)
    {DType::F16, 128, {256, 128, 5}, 8, 2, true, 0.3},
    {DType::F16, 64, {130, 1, 260}, 2, 1, false, 0.5},
};

// bf16 keeps 8 significant bits, f16 11: P is rounded to them before P·V, the output once more.
double tolerance(DType t) { return t == DType::BF16 ? 1.0 / 64 : 1.0 / 512; }
constexpr double kLseTolerance = 2e-3;  // f32 sums of exponentials, in either order

std::string runProblem(size_t index, const Problem& pr, cudaStream_t stream) {
  Rng rng{0xa77e0000ull + index};
  const int D = pr.headDim, H = pr.heads, Hkv = pr.kvHeads, B = static_cast<int>(pr.lens.size());
  std::vector<int32_t> cu{0};
  for (int len : pr.lens) cu.push_back(cu.back() + len);
  const int64_t T = cu.back();
  auto fill = [&](int64_t n, std::vector<float>& values, std::vector<uint16_t>& bits) {
    values.resize(static_cast<size_t>(n));
    bits.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      values[i] = rng.next();
      bits[i] = toHalfBits(values[i], pr.dtype);
    }
  };
  std::vector<float> q, k, v;
  std::vector<uint16_t> qBits, kBits, vBits;
  fill(T * H * D, q, qBits);
  fill(T * Hkv * D, k, kBits);
  fill(T * Hkv * D, v, vBits);

  // out and lse with a guard region after each, all NaN sentinels: only [T, H, D] and [H, T] may change.
  const size_t outElems = static_cast<size_t>(T * H * D), lseElems = static_cast<size_t>(H * T), guard = 1024;
  const size_t outBytes = (outElems + guard) * 2, lseBytes = (lseElems + guard) * 4;
  DeviceArena arena((qBits.size() + 2 * kBits.size()) * 2 + cu.size() * 4 + 2 * (outBytes + lseBytes) + 8 * 256);
  if (arena.error() != cudaSuccess) return str("cudaMalloc: ", cudaGetErrorString(arena.error()));
  void* dq = arena.take(qBits.size() * 2);
  void* dk = arena.take(kBits.size() * 2);
  void* dv = arena.take(vBits.size() * 2);
  auto* dcu = static_cast<int32_t*>(arena.take(cu.size() * 4));
  void* outHopper = arena.take(outBytes);
  void* outRef = arena.take(outBytes);
  auto* lseHopper = static_cast<float*>(arena.take(lseBytes));
  auto* lseRef = static_cast<float*>(arena.take(lseBytes));
  int* dFault = static_cast<int*>(arena.take(sizeof(int)));
  cudaError_t e = cudaSuccess;
  auto keep = [&e](cudaError_t r) {
    if (e == cudaSuccess) e = r;
  };
  keep(cudaMemcpyAsync(dq, qBits.data(), qBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dk, kBits.data(), kBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dv, vBits.data(), vBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dcu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice, stream));
  for (void* p : {outHopper, outRef}) keep(cudaMemsetAsync(p, 0xff, outBytes, stream));
  for (void* p : {static_cast<void*>(lseHopper), static_cast<void*>(lseRef)}) keep(cudaMemsetAsync(p, 0xff, lseBytes, stream));
  keep(cudaMemsetAsync(dFault, 0, sizeof(int), stream));

  const AttentionShape shape{T, H, Hkv, D, B, 0, pr.causal, pr.scale};
  try {
    attentionForwardAmpere(shape, pr.dtype, dq, dk, dv, dcu, outRef, lseRef, stream);
    std::string why;
    if (!hopperAttentionForward(shape, pr.dtype, dq, dk, dv, dcu, outHopper, lseHopper, stream,
                                HopperAttentionLaunch{dFault, &why})) {
      return "not launched: " + why;
    }
  } catch (const std::exception& ex) {
    return str("launch: ", ex.what());
  }
  std::vector<uint16_t> hopper(outElems + guard), ref(outElems + guard);
  std::vector<uint32_t> hopperLse(lseElems + guard), refLse(lseElems + guard);
  int fault = 0;
  keep(cudaMemcpyAsync(hopper.data(), outHopper, outBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(ref.data(), outRef, outBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(hopperLse.data(), lseHopper, lseBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(refLse.data(), lseRef, lseBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(&fault, dFault, sizeof(int), cudaMemcpyDeviceToHost, stream));
  keep(cudaStreamSynchronize(stream));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return str("running the kernels: ", cudaGetErrorString(e));
  }
  if (fault == 1) return "the kernel's pipeline stalled (an mbarrier wait timed out)";
  if (fault != 0) return "the kernel was built without sm_90a code";
  for (size_t i = outElems; i < outElems + guard; ++i) {
    if (hopper[i] != 0xffff) return str("problem ", index, ": the Hopper kernel wrote past out (element ", i, ")");
  }
  for (size_t i = lseElems; i < lseElems + guard; ++i) {
    if (hopperLse[i] != 0xffffffffu) return str("problem ", index, ": the Hopper kernel wrote past lse (element ", i, ")");
  }

  const double tol = tolerance(pr.dtype);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / Hkv);
      for (int i = 0; i < pr.lens[b]; ++i) {
        const int64_t t = cu[b] + i;
        const int keys = pr.causal ? i + 1 : pr.lens[b];
        std::vector<double> w(static_cast<size_t>(keys));
        double mx = -INFINITY;
        for (int j = 0; j < keys; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += double(q[(t * H + h) * D + d]) * k[((cu[b] + j) * Hkv + g) * D + d];
          w[j] = dot * pr.scale;
          mx = std::max(mx, w[j]);
        }
        double sum = 0;
        for (double& x : w) sum += (x = std::exp(x - mx));
        const double wantLse = mx + std::log(sum);
        float gotLse, refLseValue;
        std::memcpy(&gotLse, &hopperLse[static_cast<size_t>(h * T + t)], 4);
        std::memcpy(&refLseValue, &refLse[static_cast<size_t>(h * T + t)], 4);
        if (!(std::fabs(gotLse - wantLse) <= kLseTolerance * (1 + std::fabs(wantLse)))) {
          return str("problem ", index, " (token ", t, ", head ", h, "): lse ", gotLse, ", host reference ", wantLse,
                     ", FlashAttention-2 kernel ", refLseValue);
        }
        for (int d = 0; d < D; ++d) {
          double want = 0;
          for (int j = 0; j < keys; ++j) want += w[j] * v[((cu[b] + j) * Hkv + g) * D + d];
          want /= sum;
          const size_t at = static_cast<size_t>((t * H + h) * D + d);
          const double got = fromHalfBits(hopper[at], pr.dtype), other = fromHalfBits(ref[at], pr.dtype);
          if (!(std::fabs(got - want) <= tol) || !(std::fabs(got - other) <= tol)) {
            return str("problem ", index, " (token ", t, ", head ", h, ", dim ", d, "): Hopper kernel ", got,
                       ", host reference ", want, ", FlashAttention-2 kernel ", other);
          }
        }
      }
    }
  }
  return "";
}

}  // namespace

bool hopperAttentionSelfTest(cudaStream_t stream, std::string* detail) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || !isHopper(device)) {
    cudaGetLastError();
    if (detail) *detail = "not a compute capability 9.0 device";
    return false;
  }
  for (size_t i = 0; i < sizeof kProblems / sizeof kProblems[0]; ++i) {
    const std::string failure = runProblem(i, kProblems[i], stream);
    if (!failure.empty()) {
      if (detail) *detail = failure;
      return false;
    }
  }
  return true;
}

bool hopperAttentionWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream) {
  static selftest::HopperGate gate("SEQTUNE_ATTENTION_HOPPER", "attention kernel", hopperAttentionSelfTest);
  return hopperAttentionSupports(shape, dtype) && gate.open(stream);
}

}  // namespace seqtune::gpu
