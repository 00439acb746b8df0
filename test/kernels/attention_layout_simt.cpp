// The SIMT attention kernels (kernels/attention/attention_simt.cuh) under the emulator against float64:
// forward out and lse (packed documents, empty and 1-token ones included, and the KV-cache layout
// with queries past kvLens and a sequence without keys) and the backward's dq, dk, dv, causal and
// not, grouped-query heads, f32 at D 16, 24, 32, 64, 128 and 200, bf16 and f16 at odd sizes; the
// results must not depend on the thread schedule. Outputs start as NaN, so an element no thread
// writes fails. Fault "simt" breaks the emulated warp shuffle, which these checks must catch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/attention/flash_attention.h"
#include "kernels/common/dtype.h"
#include "test/kernels/attention_emulated.h"

using seqtune::gpu::AttentionShape;

void report(const std::string& check, const std::string& error);

namespace {

enum Dtype { kF32 = 0, kBf16 = 1, kF16 = 2 };
const char* dtypeName(int dt) { return dt == kF32 ? "f32" : dt == kBf16 ? "bf16" : "f16"; }

struct Case {
  AttentionShape s;
  int dtype;
  std::vector<int32_t> cu, qOffset, kvLens;
  std::vector<float> q, k, v, dout;
};

// Normal values the dtype represents exactly.
std::vector<float> randomValues(std::mt19937& rng, size_t n, int dtype) {
  std::normal_distribution<float> normal;
  std::vector<float> x(n);
  for (float& e : x) {
    const float f = normal(rng);
    e = dtype == kF32 ? f : dtype == kBf16 ? seqtune::bf16ToFloat(seqtune::floatToBf16(f)) : seqtune::f16ToFloat(seqtune::floatToF16(f));
  }
  return x;
}

Case makeCase(std::mt19937& rng, int dtype, int D, int H, int Hkv, bool causal, const std::vector<int>& lengths,
              int maxTokens = 0, std::vector<int32_t> qOffset = {}, std::vector<int32_t> kvLens = {}) {
  Case c{{}, dtype, {0}, std::move(qOffset), std::move(kvLens), {}, {}, {}, {}};
  for (int len : lengths) c.cu.push_back(c.cu.back() + len);
  const int64_t T = c.cu.back(), B = int64_t(lengths.size());
  c.s = {T, H, Hkv, D, B, maxTokens, causal, 1.0 / std::sqrt(double(D))};
  const int64_t kvRows = maxTokens > 0 ? B * maxTokens : T;
  c.q = randomValues(rng, T * H * D, dtype);
  c.k = randomValues(rng, kvRows * Hkv * D, dtype);
  c.v = randomValues(rng, kvRows * Hkv * D, dtype);
  c.dout = randomValues(rng, T * H * D, dtype);
  return c;
}

// The float64 reference, written per (query, head) over the list of keys it sees.
struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

Reference reference(const Case& c, const std::vector<float>* fwdOut, const std::vector<float>* fwdLse) {
  const int64_t T = c.s.tokens, H = c.s.heads, Hkv = c.s.kvHeads, D = c.s.headDim;
  const bool cache = c.s.maxTokens > 0;
  Reference r{std::vector<double>(T * H * D), std::vector<double>(H * T), std::vector<double>(T * H * D),
              std::vector<double>(c.k.size()), std::vector<double>(c.v.size())};
  for (int64_t b = 0; b + 1 < int64_t(c.cu.size()); ++b) {
    const int64_t len = c.cu[b + 1] - c.cu[b], keys = cache ? c.kvLens[b] : len;
    for (int64_t i = 0; i < len; ++i) {
      const int64_t t = c.cu[b] + i, position = (cache ? c.qOffset[b] : 0) + i;
      const int64_t seen = c.s.causal ? std::min(position + 1, keys) : keys;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / Hkv), qa = (t * H + h) * D;
        auto kvAt = [&](int64_t j) { return ((cache ? (b * Hkv + g) * c.s.maxTokens + j : (c.cu[b] + j) * Hkv + g)) * D; };
        std::vector<double> p(seen);
        double m = -INFINITY, l = 0;
        for (int64_t j = 0; j < seen; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(c.q[qa + d]) * c.k[kvAt(j) + d];
          m = std::max(m, p[j] = dot * c.s.scale);
        }
        for (double& x : p) l += (x = std::exp(x - m));
        for (double& x : p) x /= l;
        r.lse[h * T + t] = seen ? m + std::log(l) : -INFINITY;
        for (int64_t j = 0; j < seen; ++j) {
          for (int64_t d = 0; d < D; ++d) r.out[qa + d] += p[j] * c.v[kvAt(j) + d];
        }
        if (!fwdOut) continue;
        // The backward from the kernel's own forward, as the op runs it: dS = P ∘ (dP - Di).
        double di = 0;
        for (int64_t d = 0; d < D; ++d) di += double(c.dout[qa + d]) * (*fwdOut)[qa + d];
        for (int64_t j = 0; j < seen; ++j) {
          double s = 0, dp = 0;
          for (int64_t d = 0; d < D; ++d) {
            s += double(c.q[qa + d]) * c.k[kvAt(j) + d];
            dp += double(c.dout[qa + d]) * c.v[kvAt(j) + d];
          }
          const double prob = std::exp(s * c.s.scale - (*fwdLse)[h * T + t]), ds = prob * (dp - di);
          for (int64_t d = 0; d < D; ++d) {
            r.dq[qa + d] += c.s.scale * ds * c.k[kvAt(j) + d];
            r.dk[kvAt(j) + d] += c.s.scale * ds * c.q[qa + d];
            r.dv[kvAt(j) + d] += prob * c.dout[qa + d];
          }
        }
      }
    }
  }
  return r;
}

// ‖got - ref‖ / ‖ref‖ within the dtype's tolerance (outputs rounded to 16 bits for bf16/f16).
std::string compare(const char* what, const std::vector<double>& ref, const std::vector<float>& got, int dtype) {
  const double tolerance = dtype == kF32 ? 2e-5 : dtype == kBf16 ? 1.5e-2 : 3e-3;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return std::string(what) + " element " + std::to_string(i) + " not finite (unwritten?)";
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double error = std::sqrt(num / std::max(den, 1e-30));
  return error <= tolerance ? "" : std::string(what) + " relative error " + std::to_string(error) + " > " + std::to_string(tolerance);
}

std::string checkLse(const std::vector<double>& ref, const std::vector<float>& got, int dtype) {
  const double tolerance = dtype == kF32 ? 1e-5 : 1e-3;
  for (size_t i = 0; i < ref.size(); ++i) {
    const bool ok = std::isinf(ref[i]) ? got[i] == -INFINITY : std::fabs(got[i] - ref[i]) <= tolerance * std::max(1.0, std::fabs(ref[i]));
    if (!ok) return "lse[" + std::to_string(i) + "] = " + std::to_string(got[i]) + ", want " + std::to_string(ref[i]);
  }
  return "";
}

std::string checkForward(const Case& c, std::vector<float>* outCopy = nullptr, std::vector<float>* lseCopy = nullptr) {
  std::vector<float> out, lse, out2, lse2;
  std::string error = emu::simtForward(c.s, c.dtype, c.q, c.k, c.v, c.cu, c.qOffset, c.kvLens, out, lse, {});
  if (!error.empty()) return error;
  const Reference r = reference(c, nullptr, nullptr);
  error = compare("out", r.out, out, c.dtype);
  if (error.empty()) error = checkLse(r.lse, lse, c.dtype);
  if (!error.empty()) return error;
  error = emu::simtForward(c.s, c.dtype, c.q, c.k, c.v, c.cu, c.qOffset, c.kvLens, out2, lse2, {true, true, false});
  if (!error.empty()) return "reversed threads: " + error;
  if (out2 != out || lse2 != lse) return "the forward differs between thread schedules";
  if (outCopy) *outCopy = out;
  if (lseCopy) *lseCopy = lse;
  return "";
}

std::string checkBackward(const Case& c) {
  std::vector<float> out, lse;
  std::string error = checkForward(c, &out, &lse);
  if (!error.empty()) return "forward: " + error;
  std::vector<float> dq, dk, dv, dq2, dk2, dv2;
  error = emu::simtBackward(c.s, c.dtype, c.dout, c.q, c.k, c.v, out, lse, c.cu, dq, dk, dv, {});
  if (!error.empty()) return error;
  const Reference r = reference(c, &out, &lse);
  for (const auto& [what, ref, got] : {std::tie("dq", r.dq, dq), std::tie("dk", r.dk, dk), std::tie("dv", r.dv, dv)}) {
    error = compare(what, ref, got, c.dtype);
    if (!error.empty()) return error;
  }
  error = emu::simtBackward(c.s, c.dtype, c.dout, c.q, c.k, c.v, out, lse, c.cu, dq2, dk2, dv2, {true, true, false});
  if (!error.empty()) return "reversed threads: " + error;
  if (dq2 != dq || dk2 != dk || dv2 != dv) return "the backward differs between thread schedules";
  return "";
}

std::string label(const Case& c, const std::string& docs) {
  return std::string(dtypeName(c.dtype)) + ", D " + std::to_string(c.s.headDim) + ", H " + std::to_string(c.s.heads) +
         "/" + std::to_string(c.s.kvHeads) + ", " + docs + (c.s.causal ? ", causal" : ", non-causal");
}

}  // namespace

void checkSimtKernels() {
  std::mt19937 rng(4242);
  for (bool causal : {true, false}) {
    for (int D : {16, 24, 32, 64, 128}) {
      const Case packed = makeCase(rng, kF32, D, 4, 2, causal, {0, 1, 17, 40, 0, 9});
      report("emulated SIMT backward: " + label(packed, "docs 0 1 17 40 0 9"), checkBackward(packed));
    }
    const Case cache = makeCase(rng, kF32, 24, 4, 1, causal, {3, 0, 1, 5, 2}, 48, {10, 2, 47, 0, 30}, {12, 2, 48, 0, 31});
    report("emulated SIMT forward: cache layout (queries past kvLens, no keys), " + label(cache, "B 5"), checkForward(cache));
  }
  const Case wide = makeCase(rng, kF32, 200, 2, 1, true, {1, 12});
  report("emulated SIMT backward: " + label(wide, "docs 1 12"), checkBackward(wide));
  const Case bf16 = makeCase(rng, kBf16, 24, 4, 2, true, {1, 20, 7});
  report("emulated SIMT backward: " + label(bf16, "docs 1 20 7"), checkBackward(bf16));
  const Case f16 = makeCase(rng, kF16, 32, 2, 2, false, {9, 16});
  report("emulated SIMT backward: " + label(f16, "docs 9 16"), checkBackward(f16));
  const Case f16cache = makeCase(rng, kF16, 64, 8, 2, true, {1, 1, 1}, 40, {39, 5, 0}, {40, 6, 1});
  report("emulated SIMT forward: cache layout, decoding, " + label(f16cache, "B 3"), checkForward(f16cache));
}
