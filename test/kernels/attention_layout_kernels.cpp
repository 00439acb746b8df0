// The attention kernels run under the emulator (attention_layout_emulator.cpp) against a float64
// reference with native/cpu's semantics: packed documents (empty, 1 token, lengths that are not
// tile multiples), the KV-cache layout (queries past kvLens, a sequence with no keys), the split-K
// decoding path, GQA, causal or not, bf16 and f16, D = 64 and 128; the backward in both modes,
// the deterministic one bit-identical across thread schedules; and the KV-cache write with its
// bounds flag. Outputs start as NaN, so an element no thread writes fails the check.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention/flash_attention.h"
#include "kernels/common/dtype.h"
#include "test/kernels/attention_emulated.h"

using seqtune::gpu::AttentionShape;

void report(const std::string& check, const std::string& error);

namespace {

struct Problem {
  AttentionShape s;
  bool bf16;
  std::vector<int32_t> cu, qOffset, kvLens;  // qOffset, kvLens: cache layout only
  std::vector<uint16_t> q, k, v, dout;
};

float value(uint16_t bits, bool bf16) { return bf16 ? seqtune::bf16ToFloat(bits) : seqtune::f16ToFloat(bits); }

std::vector<uint16_t> randomHalf(std::mt19937& rng, size_t n, bool bf16) {
  std::normal_distribution<float> normal;
  std::vector<uint16_t> x(n);
  for (auto& e : x) e = bf16 ? seqtune::floatToBf16(normal(rng)) : seqtune::floatToF16(normal(rng));
  return x;
}

Problem problem(std::mt19937& rng, bool bf16, int D, int H, int Hkv, bool causal,
                const std::vector<int>& lengths, int maxTokens = 0, std::vector<int32_t> qOffset = {},
                std::vector<int32_t> kvLens = {}) {
  Problem p{{}, bf16, {0}, std::move(qOffset), std::move(kvLens), {}, {}, {}, {}};
  for (int len : lengths) p.cu.push_back(p.cu.back() + len);
  const int64_t T = p.cu.back(), B = static_cast<int64_t>(lengths.size());
  p.s = {T, H, Hkv, D, B, maxTokens, causal, 1.0 / std::sqrt(double(D))};
  const int64_t kvRows = maxTokens > 0 ? B * maxTokens : T;
  p.q = randomHalf(rng, T * H * D, bf16);
  p.k = randomHalf(rng, kvRows * Hkv * D, bf16);
  p.v = randomHalf(rng, kvRows * Hkv * D, bf16);
  p.dout = randomHalf(rng, T * H * D, bf16);
  return p;
}

// ---- float64 reference (native/cpu/attention semantics) ----------------------------------------------

struct Visible {
  int64_t b, i, keys, count;  // query i of sequence b sees keys [0, count) of its `keys`
};

Visible visibleOf(const Problem& p, int64_t token) {
  int64_t b = 0;
  while (p.cu[b + 1] <= token) ++b;
  const int64_t i = token - p.cu[b], len = p.cu[b + 1] - p.cu[b];
  const bool cache = p.s.maxTokens > 0;
  const int64_t keys = cache ? p.kvLens[b] : len, position = (cache ? p.qOffset[b] : 0) + i;
  return {b, i, keys, p.s.causal ? std::min(position + 1, keys) : keys};
}

// Element d of key (or value) j of sequence b, kv head g.
double kvAt(const Problem& p, const std::vector<uint16_t>& x, int64_t b, int64_t g, int64_t j, int64_t d) {
  const int64_t D = p.s.headDim, Hkv = p.s.kvHeads;
  const int64_t row = p.s.maxTokens > 0 ? (b * Hkv + g) * p.s.maxTokens + j : (p.cu[b] + j) * Hkv + g;
  return value(x[row * D + d], p.bf16);
}

// Probabilities of query (token, h) over its visible keys, and its lse (-inf when none).
std::vector<double> probabilities(const Problem& p, int64_t token, int64_t h, double* lse) {
  const int64_t D = p.s.headDim, H = p.s.heads, g = h / (H / p.s.kvHeads);
  const Visible vis = visibleOf(p, token);
  std::vector<double> s(vis.count);
  double m = -INFINITY;
  for (int64_t j = 0; j < vis.count; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += value(p.q[(token * H + h) * D + d], p.bf16) * kvAt(p, p.k, vis.b, g, j, d);
    s[j] = dot * p.s.scale;
    m = std::max(m, s[j]);
  }
  double l = 0;
  for (double& x : s) l += (x = std::exp(x - m));
  for (double& x : s) x /= l;
  *lse = vis.count ? m + std::log(l) : -INFINITY;
  return s;
}

double relativeError(const std::vector<double>& ref, const std::vector<uint16_t>& got, bool bf16) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = value(got[i], bf16);
    if (!std::isfinite(g)) return INFINITY;
    num += (g - ref[i]) * (g - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::string tooFar(const char* what, double error, double tolerance) {
  if (error <= tolerance) return "";
  return std::string(what) + " relative error " + std::to_string(error) + " > " + std::to_string(tolerance);
}

double tolerance(bool bf16) { return bf16 ? 1e-2 : 2e-3; }

std::string checkForward(const Problem& p, int splits, emu::Options o, std::vector<uint16_t>* outCopy = nullptr,
                         std::vector<float>* lseCopy = nullptr) {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  const std::string error = emu::forward(p.s, p.bf16, p.q, p.k, p.v, p.cu, p.qOffset, p.kvLens, splits, out, lse, o);
  if (!error.empty()) return error;
  const int64_t T = p.s.tokens, H = p.s.heads, D = p.s.headDim;
  std::vector<double> ref(out.size());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      double l;
      const std::vector<double> prob = probabilities(p, t, h, &l);
      const Visible vis = visibleOf(p, t);
      for (int64_t d = 0; d < D; ++d) {
        for (int64_t j = 0; j < vis.count; ++j) ref[(t * H + h) * D + d] += prob[j] * kvAt(p, p.v, vis.b, h / (H / p.s.kvHeads), j, d);
        if (vis.count == 0 && value(out[(t * H + h) * D + d], p.bf16) != 0.f) return "a query without keys got out != 0";
      }
      const float got = lse[h * T + t];
      if (vis.count == 0 ? got != -INFINITY : !(std::fabs(got - l) <= 2e-3 * std::max(1.0, std::fabs(l)))) {
        return "lse of query " + std::to_string(t) + ", head " + std::to_string(h) + ": " + std::to_string(got) +
               " vs " + std::to_string(l);
      }
    }
  }
  if (outCopy) *outCopy = out;
  if (lseCopy) *lseCopy = lse;
  return tooFar("out", relativeError(ref, out, p.bf16), tolerance(p.bf16));
}

std::string checkBackward(const Problem& p, emu::Options o) {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::string error = checkForward(p, 0, {}, &out, &lse);
  if (!error.empty()) return "forward: " + error;
  const int64_t T = p.s.tokens, H = p.s.heads, D = p.s.headDim, Hkv = p.s.kvHeads;
  std::vector<double> dq(T * H * D), dk(T * Hkv * D), dv(T * Hkv * D);
  for (int64_t t = 0; t < T; ++t) {
    const Visible vis = visibleOf(p, t);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      double di = 0;
      for (int64_t d = 0; d < D; ++d) {
        di += value(p.dout[(t * H + h) * D + d], p.bf16) * value(out[(t * H + h) * D + d], p.bf16);
      }
      for (int64_t j = 0; j < vis.count; ++j) {
        double s = 0, dp = 0;
        for (int64_t d = 0; d < D; ++d) {
          s += value(p.q[(t * H + h) * D + d], p.bf16) * kvAt(p, p.k, vis.b, g, j, d);
          dp += value(p.dout[(t * H + h) * D + d], p.bf16) * kvAt(p, p.v, vis.b, g, j, d);
        }
        const double prob = std::exp(s * p.s.scale - lse[h * T + t]), ds = prob * (dp - di);
        const int64_t key = p.cu[vis.b] + j;
        for (int64_t d = 0; d < D; ++d) {
          dq[(t * H + h) * D + d] += p.s.scale * ds * kvAt(p, p.k, vis.b, g, j, d);
          dk[(key * Hkv + g) * D + d] += p.s.scale * ds * value(p.q[(t * H + h) * D + d], p.bf16);
          dv[(key * Hkv + g) * D + d] += prob * value(p.dout[(t * H + h) * D + d], p.bf16);
        }
      }
    }
  }
  for (bool deterministic : {false, true}) {
    std::vector<uint16_t> gq, gk, gv;
    error = emu::backward(p.s, p.bf16, p.dout, p.q, p.k, p.v, out, lse, p.cu, deterministic, gq, gk, gv, o);
    const std::string mode = deterministic ? "deterministic " : "fast ";
    if (!error.empty()) return mode + error;
    const struct {
      const char* what;
      const std::vector<double>& ref;
      const std::vector<uint16_t>& got;
    } grads[] = {{"dq", dq, gq}, {"dk", dk, gk}, {"dv", dv, gv}};
    for (const auto& x : grads) {
      error = tooFar(x.what, relativeError(x.ref, x.got, p.bf16), 1.5 * tolerance(p.bf16));
      if (!error.empty()) return mode + error;
    }
    if (deterministic) {
      // Another schedule (threads reversed, copies landing late) must give the same bits.
      std::vector<uint16_t> q2, k2, v2;
      error = emu::backward(p.s, p.bf16, p.dout, p.q, p.k, p.v, out, lse, p.cu, true, q2, k2, v2,
                            {!o.reverse, !o.lazyCopies, o.hopper});
      if (!error.empty()) return mode + error;
      if (q2 != gq || k2 != gk || v2 != gv) return "deterministic mode differs between schedules";
    }
  }
  return "";
}

std::string checkCacheWrite(int unitBytes, bool outOfRange) {
  const int64_t B = 3, Hkv = 2, rowBytes = unitBytes == 16 ? 128 : 6, maxTokens = 10;
  const std::vector<int32_t> cu = {0, 2, 2, 5}, offsets = {3, 9, outOfRange ? 8 : 7};
  const int64_t T = cu.back();
  std::vector<uint8_t> values(T * Hkv * rowBytes), cache(B * Hkv * maxTokens * rowBytes, 0);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(1 + i % 251);
  int flag = -1;
  const std::string error = emu::cacheWrite(cache, values, unitBytes, T, Hkv, rowBytes, B, maxTokens, cu, offsets, flag, {});
  if (!error.empty()) return error;
  std::vector<uint8_t> expected(cache.size(), 0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = cu[b]; t < cu[b + 1]; ++t) {
      const int64_t position = offsets[b] + t - cu[b];
      if (position >= maxTokens) continue;
      for (int64_t g = 0; g < Hkv; ++g) {
        for (int64_t x = 0; x < rowBytes; ++x) {
          expected[((b * Hkv + g) * maxTokens + position) * rowBytes + x] = values[(t * Hkv + g) * rowBytes + x];
        }
      }
    }
  }
  if (cache != expected) return "cache contents";
  const int want = outOfRange ? int(B - 2) : 0;  // index_check encoding: count - first bad position
  if (flag != want) return "flag " + std::to_string(flag) + ", expected " + std::to_string(want);
  return "";
}

}  // namespace

void checkKernels() {
  std::mt19937 rng(99);
  const emu::Options plain{}, shuffled{true, true};
  for (bool causal : {true, false}) {
    const std::string mask = causal ? ", causal" : ", non-causal";
    report("emulated forward: bf16, D 64, GQA 8/2, docs 0 1 17 150 0 65" + mask,
           checkForward(problem(rng, true, 64, 8, 2, causal, {0, 1, 17, 150, 0, 65}), 0, causal ? plain : shuffled));
    report("emulated forward: cache layout (queries past kvLens, no keys), bf16, D 64" + mask,
           checkForward(problem(rng, true, 64, 4, 2, causal, {20, 0, 9, 5, 130}, 160, {100, 3, 0, 7, 30}, {120, 3, 5, 0, 160}),
                        0, shuffled));
    report("emulated decode: 3 splits, bf16, D 128, group 4, 8 rows" + mask,
           checkForward(problem(rng, true, 128, 8, 2, causal, {1, 1, 1}, 200, {150, 40, 0}, {151, 41, 0}), 3, plain));
    report("emulated decode: 2 splits, f16, D 64, group 8, 16 rows" + mask,
           checkForward(problem(rng, false, 64, 8, 1, causal, {2, 1}, 140, {60, 10}, {62, 140}), 2, shuffled));
  }
  report("emulated forward: bf16, D 128, GQA 4/1, docs 129 1 40, causal",
         checkForward(problem(rng, true, 128, 4, 1, true, {129, 1, 40}), 0, shuffled));
  report("emulated forward: f16, D 64, docs 70 3, non-causal",
         checkForward(problem(rng, false, 64, 2, 2, false, {70, 3}), 0, plain));
  report("emulated decode: 2 splits, bf16, D 128, group 8, 16 rows, 24 rows in two passes, causal",
         checkForward(problem(rng, true, 128, 8, 1, true, {3, 1}, 90, {80, 5}, {83, 90}), 2, shuffled));
  report("emulated decode: 1 split, bf16, D 64",
         checkForward(problem(rng, true, 64, 2, 2, true, {1, 2}, 100, {99, 0}, {100, 100}), 1, plain));
  report("emulated backward (fast, deterministic): bf16, D 64, GQA 4/2, docs 1 17 150 0 70, causal",
         checkBackward(problem(rng, true, 64, 4, 2, true, {1, 17, 150, 0, 70}), plain));
  report("emulated backward (fast, deterministic): bf16, D 128, GQA 2/1, docs 65 3, non-causal",
         checkBackward(problem(rng, true, 128, 2, 1, false, {65, 3}), shuffled));
  report("emulated backward (fast, deterministic): f16, D 64, docs 33, causal",
         checkBackward(problem(rng, false, 64, 2, 2, true, {33}), plain));
  // The Hopper kernels (kernels/flash_attention_hopper_{fwd,bwd}.cuh) under the Hopper primitives.
  // lazy: wgmmas retire as late as their wait allows, after the producer had its turn.
  const emu::Options hopper{false, true, true}, hopperReversed{true, true, true};
  report("emulated Hopper forward: bf16, D 64, GQA 8/2, docs 0 1 17 150 0 65 640, causal",
         checkForward(problem(rng, true, 64, 8, 2, true, {0, 1, 17, 150, 0, 65, 640}), 0, hopper));
  report("emulated Hopper forward: f16, D 128, GQA 4/1, docs 129 1 300, non-causal",
         checkForward(problem(rng, false, 128, 4, 1, false, {129, 1, 300}), 0, hopperReversed));
  report("emulated Hopper forward: bf16, D 128, GQA 2/2, docs 256 70 520, causal (the 3-stage ring wraps)",
         checkForward(problem(rng, true, 128, 2, 2, true, {256, 70, 520}), 0, hopper));
  report("emulated Hopper backward (fast, deterministic): bf16, D 64, GQA 4/2, docs 1 17 150 0 70, causal",
         checkBackward(problem(rng, true, 64, 4, 2, true, {1, 17, 150, 0, 70}), hopper));
  report("emulated Hopper backward (fast, deterministic): bf16, D 128, GQA 2/1, docs 65 130 3, non-causal",
         checkBackward(problem(rng, true, 128, 2, 1, false, {65, 130, 3}), hopperReversed));
  report("emulated Hopper backward (fast, deterministic): f16, D 64, docs 200, causal",
         checkBackward(problem(rng, false, 64, 2, 2, true, {200}), hopper));
  for (int i = 0; i < emu::hopperGemmCases(); ++i) {
    report("emulated Hopper GEMM: " + emu::describeGemm(i), emu::hopperGemm(i, i % 2 ? hopperReversed : hopper));
  }
  report("emulated kvCacheWrite: 16-byte units", checkCacheWrite(16, false));
  report("emulated kvCacheWrite: 2-byte units", checkCacheWrite(2, false));
  report("emulated kvCacheWrite: a row past the cache is skipped and flagged", checkCacheWrite(16, true));
}
