// linearCrossEntropy's row math (kernels/loss/linear_cross_entropy_rows.h) run on the host as the
// row kernels of kernels/loss/linear_cross_entropy.cu run it: per vocabulary chunk, 32 lanes fold
// a row with laneFold, the warp merges them with the xor-16..1 butterfly, lane 0 merges the result
// into the row's running state; then lse = m + log s, the loss, and the backward's dlogits. All
// compared with float64 on fresh random logits. An argument names a deliberately broken variant
// (rescale: merge adds sums without rescaling; butterfly: the xor-1 step skipped; label: the
// onehot one column off), which must fail.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/loss/linear_cross_entropy_rows.h"

namespace lce = seqtune::gpu::lce;
using State = lce::State<float>;

namespace {

std::string gFault;
int gFailures = 0;

void report(bool ok, const std::string& name, const std::string& detail) {
  if (ok) {
    std::printf("ok %s\n", name.c_str());
  } else {
    std::printf("FAIL %s: %s\n", name.c_str(), detail.c_str());
    ++gFailures;
  }
}

// Round to bf16, nearest even (finite inputs).
float bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

State mergeAs(State a, State b) {
  if (gFault == "rescale") return {a.m > b.m ? a.m : b.m, a.s + b.s};
  return lce::merge(a, b);
}

// One warp's fold of a row of n logits, as foldLogitsKernel does it; every lane ends with the row's state.
State warpFold(const float* row, int64_t n) {
  State lane[32];
  for (int l = 0; l < 32; ++l) lane[l] = lce::laneFold(row, n, l);
  for (int o = 16; o > 0; o >>= 1) {
    if (gFault == "butterfly" && o == 1) continue;
    State next[32];
    for (int l = 0; l < 32; ++l) next[l] = mergeAs(lane[l], lane[l ^ o]);
    for (int l = 0; l < 32; ++l) lane[l] = next[l];
  }
  return lane[0];
}

double refLse(const std::vector<float>& row) {
  double m = -INFINITY, s = 0;
  for (float x : row) m = std::fmax(m, static_cast<double>(x));
  for (float x : row) s += std::exp(static_cast<double>(x) - m);
  return m + std::log(s);
}

struct Case {
  int64_t rows, vocab, chunk;
  float spread, shift;  // logits: shift + spread · N(0, 1) per row, shifts large enough to overflow a naive exp
  bool mean;
};

void runCase(const Case& k, std::mt19937_64& rng, double* worstF32, double* worstBf16) {
  const int64_t ignoreIndex = -100;
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_int_distribution<int64_t> label(0, k.vocab - 1);
  std::vector<std::vector<float>> logits(k.rows, std::vector<float>(k.vocab));
  std::vector<int64_t> labels(k.rows);
  for (int64_t r = 0; r < k.rows; ++r) {
    const float shift = k.shift * normal(rng);
    for (float& x : logits[r]) x = shift + k.spread * normal(rng);
    labels[r] = r % 7 == 3 ? ignoreIndex : (r % 11 == 5 ? k.vocab + 2 : label(rng));  // ignored and out of range rows
  }
  const std::string name = "rows " + std::to_string(k.rows) + " V " + std::to_string(k.vocab) + " chunk " +
                           std::to_string(k.chunk) + (k.mean ? " mean" : " sum");

  // Forward: chunk by chunk into each row's running state, then lse, the loss and the count.
  std::vector<float> lse(k.rows);
  double loss = 0, refLoss = 0, count = 0, worst = 0;
  for (int64_t r = 0; r < k.rows; ++r) {
    State run{-INFINITY, 0.f}, runBf16{-INFINITY, 0.f};
    float target = 0;
    for (int64_t v0 = 0; v0 < k.vocab; v0 += k.chunk) {
      const int64_t n = std::min(k.chunk, k.vocab - v0);
      const float* row = logits[r].data() + v0;
      run = mergeAs(run, warpFold(row, n));
      // The same fold over bf16-rounded logits: what a bf16 logits scratch would cost.
      std::vector<float> rounded(row, row + n);
      for (float& x : rounded) x = bf16(x);
      runBf16 = mergeAs(runBf16, warpFold(rounded.data(), n));
      if (labels[r] - v0 >= 0 && labels[r] - v0 < n) target = row[labels[r] - v0];
    }
    lse[r] = run.m + std::log(run.s);
    const double ref = refLse(logits[r]);
    worst = std::fmax(worst, std::fabs(lse[r] - ref) / (1 + std::fabs(ref)));
    if (lce::skipRow(labels[r], ignoreIndex, k.vocab)) continue;
    const double rowLoss = ref - logits[r][labels[r]];
    const double bf16Loss = runBf16.m + std::log(runBf16.s) - bf16(target);
    *worstBf16 = std::fmax(*worstBf16, std::fabs(bf16Loss - rowLoss) / (1 + std::fabs(rowLoss)));
    *worstF32 = std::fmax(*worstF32, std::fabs((lse[r] - target) - rowLoss) / (1 + std::fabs(rowLoss)));
    loss += static_cast<double>(lse[r] - target);
    refLoss += ref - logits[r][labels[r]];
    count += 1;
  }
  if (k.mean && count > 0) loss /= count, refLoss /= count;
  report(worst < 2e-6, "lse " + name, "worst relative error " + std::to_string(worst));
  report(std::fabs(loss - refLoss) < 1e-5 * (1 + std::fabs(refLoss)), "loss " + name,
         std::to_string(loss) + " vs " + std::to_string(refLoss));

  // Backward: dlogits against coef · (softmax − onehot) in float64, from the float64 lse.
  const double gradScale = 0.5 + std::uniform_real_distribution<double>(0, 2)(rng);
  const float coef = static_cast<float>(lce::gradCoef(gradScale, k.mean, count));
  const double refCoef = k.mean ? gradScale / count : gradScale;
  double worstGrad = 0;
  for (int64_t r = 0; r < k.rows; ++r) {
    const bool skip = lce::skipRow(labels[r], ignoreIndex, k.vocab);
    const double ref = refLse(logits[r]);
    const int64_t onehot = gFault == "label" ? labels[r] + 1 : labels[r];
    for (int64_t v = 0; v < k.vocab; ++v) {
      const float d = skip ? 0.f : lce::dlogit(logits[r][v], lse[r], coef, v == onehot);
      const double p = std::exp(static_cast<double>(logits[r][v]) - ref);
      const double want = skip ? 0.0 : refCoef * (p - (v == labels[r] ? 1.0 : 0.0));
      // f32 bounds: p to a few ulps of lse's magnitude, the label's −coef to an ulp of coef.
      const double bound = std::fabs(refCoef) * (1e-4 * p + (v == labels[r] ? 5e-7 : 0.0) + 1e-37);
      worstGrad = std::fmax(worstGrad, std::fabs(d - want) / bound);
    }
  }
  report(worstGrad < 1, "dlogits " + name, "worst error / bound " + std::to_string(worstGrad));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) gFault = argv[1];
  std::mt19937_64 rng(std::random_device{}());
  double worstF32 = 0, worstBf16 = 0;
  const Case cases[] = {
      {37, 1000, 256, 3.f, 40.f, true},  // ragged last chunk, shifts past exp's range
      {20, 4133, 1024, 1.f, 5.f, false},
      {9, 77, 4096, 8.f, 100.f, true},   // one chunk narrower than a warp's stride
      {16, 31, 5, 2.f, 1.f, true},       // chunks narrower than the warp: idle lanes
  };
  for (const Case& k : cases) runCase(k, rng, &worstF32, &worstBf16);
  // Per-row loss error relative to 1 + |loss|: f32 logits (what the kernels keep) and bf16-rounded ones.
  std::printf("json row_loss_error_f32 %.3e\n", worstF32);
  std::printf("json row_loss_error_bf16 %.3e\n", worstBf16);
  return gFailures ? 1 : 0;
}
