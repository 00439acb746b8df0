// When attentionForward and attentionBackward take the Hopper kernels (hopperAttentionWanted,
// hopperAttentionBackwardWanted), and the one-time self-tests that guard them: the kernels were
// written without a GPU to run them on, so a device only uses one after it reproduced the
// FlashAttention-2 kernels and a float64 host reference on fixed problems.
//
// Inputs are multiples of 1/64 in [-1, 1] (exact in bf16 and f16) and most problems use a large
// softmax scale, so each query's weights are concentrated on a few keys: a key or value in the
// wrong place, a missed mask or a lost tile moves the output by far more than the tolerance,
// which covers P's rounding to 16 bits and the output's rounding.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/hopper/hopper_selftest.h"
#include "kernels/common/errors.h"

namespace seqtune::gpu {

namespace {

using selftest::DeviceArena;
using selftest::fromHalfBits;
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
    {DType::BF16, 128, {200, 77, 520}, 2, 2, false, 0.08838834764831845},  // 1/sqrt(128); 520: the ring wraps
    {DType::F16, 128, {256, 128, 5}, 8, 2, true, 0.3},
    {DType::F16, 64, {130, 1, 260}, 2, 1, false, 0.5},
};

// bf16 keeps 8 significant bits, f16 11: P is rounded to them before P·V, the output once more.
double tolerance(DType t) { return t == DType::BF16 ? 1.0 / 64 : 1.0 / 512; }
constexpr double kLseTolerance = 2e-3;  // f32 sums of exponentials, in either order
// dK and dV sum many rounded terms (P or dS rounded to 16 bits, Di from the rounded output):
// relative to the tensor's largest element.
constexpr double kGradTolerance = 1.0 / 64;

// One problem's inputs on the host (values and their 16-bit bits) and the float64 reference:
// probabilities per (document, head, query) are recomputed where needed.
struct Inputs {
  const Problem& pr;
  std::vector<int32_t> cu;
  int64_t T;
  std::vector<float> q, k, v, dout;
  std::vector<uint16_t> qBits, kBits, vBits, doutBits;

  Inputs(size_t index, const Problem& problem) : pr(problem), cu{0} {
    Rng rng{0xa77e0000ull + index};
    for (int len : pr.lens) cu.push_back(cu.back() + len);
    T = cu.back();
    auto fill = [&](int64_t n, std::vector<float>& values, std::vector<uint16_t>& bits) {
      values.resize(static_cast<size_t>(n));
      bits.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        values[i] = rng.next();
        bits[i] = toHalfBits(values[i], pr.dtype);
      }
    };
    fill(T * pr.heads * pr.headDim, q, qBits);
    fill(T * pr.kvHeads * pr.headDim, k, kBits);
    fill(T * pr.kvHeads * pr.headDim, v, vBits);
    fill(T * pr.heads * pr.headDim, dout, doutBits);
  }
  AttentionShape shape() const {
    return {T, pr.heads, pr.kvHeads, pr.headDim, static_cast<int64_t>(pr.lens.size()), 0, pr.causal, pr.scale};
  }
  int64_t at(int64_t token, int head, int heads, int d) const { return (token * heads + head) * pr.headDim + d; }

  // Softmax weights of query i of document b, head h over its visible keys; lse on the side.
  std::vector<double> weights(int b, int h, int i, double* lse) const {
    const int D = pr.headDim, g = h / (pr.heads / pr.kvHeads);
    const int keys = pr.causal ? i + 1 : pr.lens[b];
    std::vector<double> w(static_cast<size_t>(keys));
    double mx = -INFINITY;
    for (int j = 0; j < keys; ++j) {
      double dot = 0;
      for (int d = 0; d < D; ++d) dot += double(q[at(cu[b] + i, h, pr.heads, d)]) * k[at(cu[b] + j, g, pr.kvHeads, d)];
      w[j] = dot * pr.scale;
      mx = std::max(mx, w[j]);
    }
    double sum = 0;
    for (double& x : w) sum += (x = std::exp(x - mx));
    for (double& x : w) x /= sum;
    *lse = mx + std::log(sum);
    return w;
  }
};

// Device copies of the inputs and NaN-filled outputs, in one arena.
struct DeviceBuffers {
  DeviceArena arena;
  void *q, *k, *v, *dout;
  int32_t* cu;
  int* fault;
  explicit DeviceBuffers(const Inputs& in, size_t extra)
      : arena((in.qBits.size() + 2 * in.kBits.size() + in.doutBits.size()) * 2 + in.cu.size() * 4 + extra + 64 * 256) {
    q = arena.take(in.qBits.size() * 2);
    k = arena.take(in.kBits.size() * 2);
    v = arena.take(in.vBits.size() * 2);
    dout = arena.take(in.doutBits.size() * 2);
    cu = static_cast<int32_t*>(arena.take(in.cu.size() * 4));
    fault = static_cast<int*>(arena.take(sizeof(int)));
  }
};

// Collects the first CUDA error of a sequence of calls.
struct Errors {
  cudaError_t e = cudaSuccess;
  void operator()(cudaError_t r) {
    if (e == cudaSuccess) e = r;
  }
};

void upload(Errors& keep, const DeviceBuffers& d, const Inputs& in, cudaStream_t stream) {
  keep(cudaMemcpyAsync(d.q, in.qBits.data(), in.qBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(d.k, in.kBits.data(), in.kBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(d.v, in.vBits.data(), in.vBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(d.dout, in.doutBits.data(), in.doutBits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(d.cu, in.cu.data(), in.cu.size() * 4, cudaMemcpyHostToDevice, stream));
  keep(cudaMemsetAsync(d.fault, 0, sizeof(int), stream));
}

// "" or what went wrong after the kernels ran (the stream is synchronised).
std::string finish(Errors& keep, const DeviceBuffers& d, cudaStream_t stream) {
  int fault = 0;
  keep(cudaMemcpyAsync(&fault, d.fault, sizeof(int), cudaMemcpyDeviceToHost, stream));
  keep(cudaStreamSynchronize(stream));
  if (keep.e != cudaSuccess) {
    cudaGetLastError();
    return str("running the kernels: ", cudaGetErrorString(keep.e));
  }
  if (fault == 1) return "the kernel's pipeline stalled (an mbarrier wait timed out)";
  if (fault != 0) return "the kernel was built without sm_90a code";
  return "";
}

template <typename V>
std::string checkGuard(const std::vector<V>& values, size_t from, V sentinel, size_t index, const char* what) {
  for (size_t i = from; i < values.size(); ++i) {
    if (values[i] != sentinel) return str("problem ", index, ": the Hopper kernel wrote past ", what, " (element ", i, ")");
  }
  return "";
}

constexpr size_t kGuard = 1024;  // elements after each output that must keep their NaN sentinels

std::string forwardProblem(size_t index, const Problem& pr, cudaStream_t stream) {
  const Inputs in(index, pr);
  const int D = pr.headDim, H = pr.heads;
  const size_t outElems = static_cast<size_t>(in.T * H * D), lseElems = static_cast<size_t>(H * in.T);
  const size_t outBytes = (outElems + kGuard) * 2, lseBytes = (lseElems + kGuard) * 4;
  DeviceBuffers d(in, 2 * (outBytes + lseBytes));
  if (d.arena.error() != cudaSuccess) return str("cudaMalloc: ", cudaGetErrorString(d.arena.error()));
  void* outHopper = d.arena.take(outBytes);
  void* outRef = d.arena.take(outBytes);
  auto* lseHopper = static_cast<float*>(d.arena.take(lseBytes));
  auto* lseRef = static_cast<float*>(d.arena.take(lseBytes));
  Errors keep;
  upload(keep, d, in, stream);
  for (void* p : {outHopper, outRef}) keep(cudaMemsetAsync(p, 0xff, outBytes, stream));
  for (void* p : {static_cast<void*>(lseHopper), static_cast<void*>(lseRef)}) keep(cudaMemsetAsync(p, 0xff, lseBytes, stream));

  try {
    attentionForwardAmpere(in.shape(), pr.dtype, d.q, d.k, d.v, d.cu, outRef, lseRef, stream);
    std::string why;
    if (!hopperAttentionForward(in.shape(), pr.dtype, d.q, d.k, d.v, d.cu, outHopper, lseHopper, stream,
                                HopperAttentionLaunch{d.fault, &why})) {
      return "not launched: " + why;
    }
  } catch (const std::exception& ex) {
    return str("launch: ", ex.what());
  }
  std::vector<uint16_t> hopper(outElems + kGuard), ref(outElems + kGuard);
  std::vector<float> hopperLse(lseElems + kGuard), refLse(lseElems + kGuard);
  keep(cudaMemcpyAsync(hopper.data(), outHopper, outBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(ref.data(), outRef, outBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(hopperLse.data(), lseHopper, lseBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(refLse.data(), lseRef, lseBytes, cudaMemcpyDeviceToHost, stream));
  if (std::string failure = finish(keep, d, stream); !failure.empty()) return failure;
  if (std::string failure = checkGuard<uint16_t>(hopper, outElems, 0xffff, index, "out"); !failure.empty()) return failure;
  for (size_t i = lseElems; i < lseElems + kGuard; ++i) {
    if (!std::isnan(hopperLse[i])) return str("problem ", index, ": the Hopper kernel wrote past lse (element ", i, ")");
  }

  const double tol = tolerance(pr.dtype);
  for (size_t b = 0; b < pr.lens.size(); ++b) {
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / pr.kvHeads);
      for (int i = 0; i < pr.lens[b]; ++i) {
        const int64_t t = in.cu[b] + i;
        double wantLse = 0;
        const std::vector<double> w = in.weights(static_cast<int>(b), h, i, &wantLse);
        const float gotLse = hopperLse[static_cast<size_t>(h * in.T + t)];
        if (!(std::fabs(gotLse - wantLse) <= kLseTolerance * (1 + std::fabs(wantLse)))) {
          return str("problem ", index, " (token ", t, ", head ", h, "): lse ", gotLse, ", host reference ", wantLse,
                     ", FlashAttention-2 kernel ", refLse[static_cast<size_t>(h * in.T + t)]);
        }
        for (int dd = 0; dd < D; ++dd) {
          double want = 0;
          for (size_t j = 0; j < w.size(); ++j) want += w[j] * in.v[in.at(in.cu[b] + int64_t(j), g, pr.kvHeads, dd)];
          const size_t at = static_cast<size_t>(in.at(t, h, H, dd));
          const double got = fromHalfBits(hopper[at], pr.dtype), other = fromHalfBits(ref[at], pr.dtype);
          if (!(std::fabs(got - want) <= tol) || !(std::fabs(got - other) <= tol)) {
            return str("problem ", index, " (token ", t, ", head ", h, ", dim ", dd, "): Hopper kernel ", got,
                       ", host reference ", want, ", FlashAttention-2 kernel ", other);
          }
        }
      }
    }
  }
  return "";
}

// The Hopper backward in both modes against the deterministic FlashAttention-2 backward and a
// float64 gradient: dV = Σ_i P·dO, dK = scale · Σ_i P ∘ (dP - Di) · Q over each kv head's group,
// and (the fast mode's accumulator) dQ = Σ_j P ∘ (dP - Di) · K, unscaled.
std::string backwardProblem(size_t index, const Problem& pr, cudaStream_t stream) {
  const Inputs in(index, pr);
  const int D = pr.headDim, H = pr.heads, Hkv = pr.kvHeads;
  const AttentionShape shape = in.shape();
  const size_t qElems = static_cast<size_t>(in.T * H * D), kvElems = static_cast<size_t>(in.T * Hkv * D);
  const size_t rows = static_cast<size_t>(H * in.T), kvBytes = (kvElems + kGuard) * 2;
  const size_t accBytes = (qElems + kGuard) * 4;
  const size_t workspace = attentionBackwardWorkspaceBytes(shape, true);
  DeviceBuffers d(in, 2 * qElems * 2 + rows * 4 + 6 * kvBytes + 2 * rows * 4 + accBytes + workspace);
  if (d.arena.error() != cudaSuccess) return str("cudaMalloc: ", cudaGetErrorString(d.arena.error()));
  void* out = d.arena.take(qElems * 2);
  void* dq = d.arena.take(qElems * 2);
  auto* lse = static_cast<float*>(d.arena.take(rows * 4));
  void* kv[6];  // dk, dv of FlashAttention-2, of the deterministic and of the fast Hopper kernel
  for (void*& p : kv) p = d.arena.take(kvBytes);
  auto* lse2 = static_cast<float*>(d.arena.take(rows * 4));
  auto* di = static_cast<float*>(d.arena.take(rows * 4));
  auto* acc = static_cast<float*>(d.arena.take(accBytes));
  void* ws = d.arena.take(workspace);
  Errors keep;
  upload(keep, d, in, stream);
  for (void* p : kv) keep(cudaMemsetAsync(p, 0xff, kvBytes, stream));
  keep(cudaMemsetAsync(acc, 0, qElems * 4, stream));
  keep(cudaMemsetAsync(acc + qElems, 0xff, kGuard * 4, stream));
  std::vector<uint16_t> outBits(qElems);
  std::vector<float> lseHost(rows);
  try {
    attentionForwardAmpere(shape, pr.dtype, d.q, d.k, d.v, d.cu, out, lse, stream);
    attentionBackwardAmpere(shape, pr.dtype, d.dout, d.q, d.k, d.v, out, lse, d.cu, dq, kv[0], kv[1], true, ws, stream);
    // lse2 and Di as the preprocess computes them, from this forward's out and lse.
    keep(cudaMemcpyAsync(outBits.data(), out, qElems * 2, cudaMemcpyDeviceToHost, stream));
    keep(cudaMemcpyAsync(lseHost.data(), lse, rows * 4, cudaMemcpyDeviceToHost, stream));
    keep(cudaStreamSynchronize(stream));
    std::vector<float> lse2Host(rows), diHost(rows);
    for (int h = 0; h < H; ++h) {
      for (int64_t t = 0; t < in.T; ++t) {
        const size_t r = static_cast<size_t>(h * in.T + t);
        lse2Host[r] = std::isinf(lseHost[r]) ? INFINITY : lseHost[r] * 1.4426950408889634f;
        double sum = 0;
        for (int dd = 0; dd < D; ++dd) {
          const size_t at = static_cast<size_t>(in.at(t, h, H, dd));
          sum += double(in.dout[at]) * fromHalfBits(outBits[at], pr.dtype);
        }
        diHost[r] = static_cast<float>(sum);
      }
    }
    keep(cudaMemcpyAsync(lse2, lse2Host.data(), rows * 4, cudaMemcpyHostToDevice, stream));
    keep(cudaMemcpyAsync(di, diHost.data(), rows * 4, cudaMemcpyHostToDevice, stream));
    for (int fast = 0; fast < 2; ++fast) {
      std::string why;
      const HopperBackwardArgs args{d.q, d.k, d.v, d.dout, kv[2 + 2 * fast], kv[3 + 2 * fast], lse2, di, d.cu,
                                    fast ? acc : nullptr};
      if (!hopperAttentionBackward(shape, pr.dtype, args, stream, HopperAttentionLaunch{d.fault, &why})) {
        return str("not launched (", fast ? "fast" : "deterministic", " mode): ", why);
      }
    }
  } catch (const std::exception& ex) {
    return str("launch: ", ex.what());
  }
  std::vector<uint16_t> kvHost[6];
  for (int i = 0; i < 6; ++i) {
    kvHost[i].resize(kvElems + kGuard);
    keep(cudaMemcpyAsync(kvHost[i].data(), kv[i], kvBytes, cudaMemcpyDeviceToHost, stream));
  }
  std::vector<float> accHost(qElems + kGuard);
  keep(cudaMemcpyAsync(accHost.data(), acc, accBytes, cudaMemcpyDeviceToHost, stream));
  if (std::string failure = finish(keep, d, stream); !failure.empty()) return failure;
  const char* names[] = {"dk", "dv", "dk", "dv", "dk (fast mode)", "dv (fast mode)"};
  for (int i = 2; i < 6; ++i) {
    if (std::string failure = checkGuard<uint16_t>(kvHost[i], kvElems, 0xffff, index, names[i]); !failure.empty()) {
      return failure;
    }
  }
  for (size_t i = qElems; i < qElems + kGuard; ++i) {
    if (!std::isnan(accHost[i])) return str("problem ", index, ": the Hopper kernel wrote past the dq accumulator");
  }

  // The float64 gradients, query by query.
  std::vector<double> wantK(kvElems, 0.0), wantV(kvElems, 0.0), wantQ(qElems, 0.0);
  for (size_t b = 0; b < pr.lens.size(); ++b) {
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / Hkv);
      for (int i = 0; i < pr.lens[b]; ++i) {
        const int64_t t = in.cu[b] + i;
        double lseUnused = 0;
        const std::vector<double> w = in.weights(static_cast<int>(b), h, i, &lseUnused);
        std::vector<double> o(static_cast<size_t>(D), 0.0), dp(w.size(), 0.0);
        for (size_t j = 0; j < w.size(); ++j) {
          for (int dd = 0; dd < D; ++dd) {
            const double vj = in.v[in.at(in.cu[b] + int64_t(j), g, Hkv, dd)];
            o[dd] += w[j] * vj;
            dp[j] += double(in.dout[in.at(t, h, H, dd)]) * vj;
          }
        }
        double diRow = 0;
        for (int dd = 0; dd < D; ++dd) diRow += double(in.dout[in.at(t, h, H, dd)]) * o[dd];
        for (size_t j = 0; j < w.size(); ++j) {
          const double ds = w[j] * (dp[j] - diRow);
          for (int dd = 0; dd < D; ++dd) {
            const size_t kvAt = static_cast<size_t>(in.at(in.cu[b] + int64_t(j), g, Hkv, dd));
            const size_t qAt = static_cast<size_t>(in.at(t, h, H, dd));
            wantV[kvAt] += w[j] * in.dout[qAt];
            wantK[kvAt] += pr.scale * ds * in.q[qAt];
            wantQ[qAt] += ds * in.k[kvAt];
          }
        }
      }
    }
  }
  // Relative to the tensor's largest element.
  auto within = [](const std::vector<double>& want, size_t i, double got, double other, double scaleOf) {
    const double tol = kGradTolerance * (scaleOf + std::fabs(want[i]));
    return std::fabs(got - want[i]) <= tol && std::fabs(got - other) <= tol;
  };
  auto largest = [](const std::vector<double>& x) {
    double m = 0;
    for (double v : x) m = std::max(m, std::fabs(v));
    return m;
  };
  for (int i = 2; i < 6; ++i) {
    const std::vector<double>& want = i % 2 == 0 ? wantK : wantV;
    const std::vector<uint16_t>& fa2 = kvHost[i % 2];
    const double scaleOf = largest(want);
    for (size_t e = 0; e < kvElems; ++e) {
      const double got = fromHalfBits(kvHost[i][e], pr.dtype), other = fromHalfBits(fa2[e], pr.dtype);
      if (!within(want, e, got, other, scaleOf)) {
        return str("problem ", index, ": ", names[i], "[", e, "] Hopper kernel ", got, ", host reference ", want[e],
                   ", FlashAttention-2 kernels ", other);
      }
    }
  }
  const double scaleQ = largest(wantQ);
  for (size_t e = 0; e < qElems; ++e) {
    if (!within(wantQ, e, accHost[e], wantQ[e], scaleQ)) {
      return str("problem ", index, ": dq accumulator[", e, "] Hopper kernel ", accHost[e], ", host reference ",
                 wantQ[e]);
    }
  }
  return "";
}

using ProblemCheck = std::string (*)(size_t, const Problem&, cudaStream_t);

bool runProblems(ProblemCheck check, cudaStream_t stream, std::string* detail) {
  return selftest::runSelfTest(
      sizeof kProblems / sizeof kProblems[0], [&](size_t i) { return check(i, kProblems[i], stream); }, detail);
}

}  // namespace

bool hopperAttentionSelfTest(cudaStream_t stream, std::string* detail) {
  return runProblems(forwardProblem, stream, detail);
}

bool hopperAttentionBackwardSelfTest(cudaStream_t stream, std::string* detail) {
  return runProblems(backwardProblem, stream, detail);
}

namespace {
selftest::HopperGate forwardGate("attentionForward", "SEQTUNE_ATTENTION_HOPPER", "attention forward kernel",
                                 hopperAttentionSelfTest);
selftest::HopperGate backwardGate("attentionBackward", "SEQTUNE_ATTENTION_HOPPER", "attention backward kernels",
                                  hopperAttentionBackwardSelfTest);
}  // namespace

bool hopperAttentionWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream) {
  return hopperAttentionSupports(shape, dtype) && forwardGate.open(stream);
}

bool hopperAttentionBackwardWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream) {
  return hopperAttentionSupports(shape, dtype) && backwardGate.open(stream);
}

}  // namespace seqtune::gpu
