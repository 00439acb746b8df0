// Host checks of the Hopper attention kernels' index math (kernels/hopper/flash_attention_hopper_layout.h),
// run by attention-hopper-layout.test.ts without a GPU. The emulated kernels walk the kernels'
// index paths for whole packed batches: the block search and tile ranges of the FlashAttention-2
// kernels (flash_attention_layout.h), the header's TMA boxes and tensor maps, operands landing in
// shared memory as TMA puts them, every product read through the kernels' wgmma descriptors,
// accumulators handed to the next wgmma as register fragments, the stage ring's order, and the
// rows each warpgroup stores (attention_hopper_emulation.h); the results are compared with a
// float64 attention and its gradients. This file: the layout checks, the forward, and main; the
// backward's passes are in attention_hopper_layout_bwd.cpp.
//
// Usage: attention_hopper_layout [fault], fault one of swizzle (TMA writes unswizzled), qbox (the
// second warpgroup's block box lands on the first's), kstep (K-major descriptors miss their
// 32-byte step), vlbo (the MN-major LBO halved), mask (every tile taken as unmasked), stage (the
// second operand's tile in the wrong stage), dstile (the backward's dS tile stored unswizzled):
// the checks must then fail. Prints "ok <check>" or
// "FAIL <check>: ..."; exits 1 on any failure.
#include <cstdio>

#include "test/kernels/attention_hopper_emulation.h"
#include "test/kernels/host_report.h"

namespace attention_emulation {

std::string gFault;

template <int D>
std::string emulateBackward(const Case& c);

namespace {

using host_report::report;

template <int D>
std::string checkLayout() {
  using F = ah::FwdConfig<D>;
  using B = ah::BwdConfig<D>;
  for (int wg = 0; wg < ah::kConsumers; ++wg) {
    for (int ch = 0; ch < ah::Block<D>::kChunks; ++ch) {
      const ah::BoxAt box = ah::blockBox<D>(wg, ch, 0, 0);
      if (box.offset % hx::kAtomBytes != 0 || box.offset + ah::Block<D>::kBoxBytes > uint32_t(ah::Block<D>::kBytes)) {
        return "block box (" + std::to_string(wg) + ", " + std::to_string(ch) + ") outside the block";
      }
    }
  }
  if (F::B::kBytes > F::kKOffset || F::kKOffset + F::kStages * F::Ti::kBytes > F::kVOffset ||
      F::kVOffset + F::kStages * F::Ti::kBytes > F::kBarrierOffset) {
    return "forward regions overlap";
  }
  if (B::kVOffset < B::B::kBytes || B::kQOffset < B::kVOffset + B::B::kBytes ||
      B::kDoOffset < B::kQOffset + B::kStages * B::Ti::kBytes || B::kDsOffset < B::kDoOffset + B::kStages * B::Ti::kBytes ||
      B::kBarrierOffset < B::kDsOffset + ah::kConsumers * B::kDsBytes) {
    return "backward regions overlap";
  }
  return "";
}

// The forward: CTAs over (query block, head); K and V tiles through the ring; the online softmax.
template <int D>
std::string emulateForward(const Case& c) {
  using C = ah::FwdConfig<D>;
  constexpr int kN = C::kTileRows;
  std::vector<int32_t> cu{0};
  for (int len : c.lens) cu.push_back(cu.back() + len);
  const int batch = static_cast<int>(c.lens.size());
  const int64_t T = cu.back();
  const Packed q(T, c.heads, D, 1), k(T, c.kvHeads, D, 2), v(T, c.kvHeads, D, 3);
  const auto mq = mapOf(q, ah::kWarpgroupRows), mk = mapOf(k, kN), mv = mapOf(v, kN);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const Reference ref = reference(c, cu, q, k, v, nullptr, scale);
  std::vector<double> out(ref.out.size(), NAN), lse(ref.lse.size(), NAN);
  std::vector<int> writes(static_cast<size_t>(T * c.heads), 0);
  const uint32_t base = 5 * hx::kAtomBytes;  // any 1024-aligned shared address
  Smem smem(base + C::kBarrierOffset);

  for (int64_t vb = 0; vb < attn::virtualBlocks(batch, T, ah::kBlockRows); ++vb) {
    for (int h = 0; h < c.heads; ++h) {
      const attn::BlockSlot slot = attn::findBlock(cu.data(), batch, ah::kBlockRows, vb);
      if (slot.block < 0) continue;
      const attn::Sequence s = attn::sequenceOf(cu.data(), nullptr, nullptr, slot.doc, T, 0);
      const int q0 = slot.block * ah::kBlockRows;
      if (!s.ok || q0 >= s.len) continue;
      const int g = attn::kvHeadOf(h, c.heads, c.kvHeads), nq = std::min(ah::kBlockRows, s.len - q0);
      const attn::TileRange tiles = attn::keyTilesOf(c.causal, s, q0, ah::kBlockRows, kN);
      smem.reset();
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        for (int ch = 0; ch < ah::Block<D>::kChunks; ++ch) {
          ah::BoxAt box = ah::blockBox<D>(gFault == "qbox" ? 0 : wg, ch, int64_t(s.start) + q0, h);
          box.row = ah::blockBox<D>(wg, ch, int64_t(s.start) + q0, h).row;
          smem.load(base + box.offset, q, mq, box);
        }
      }
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        std::vector<double> m(ah::kWarpgroupRows, -INFINITY), l(ah::kWarpgroupRows, 0.0);
        std::vector<double> o(static_cast<size_t>(ah::kWarpgroupRows * D), 0.0);
        for (int t = 0; t < tiles.count; ++t) {
          const int stage = ah::stageOf<C::kStages>(t).stage, vStage = gFault == "stage" ? (stage + 1) % C::kStages : stage;
          for (int ch = 0; ch < ah::Block<D>::kChunks; ++ch) {
            const ah::BoxAt box = ah::tileBox<D, kN>(ch, int64_t(s.start) + int64_t(t) * kN, g);
            smem.load(base + C::kKOffset + stage * C::Ti::kBytes + box.offset, k, mk, box);
            smem.load(base + C::kVOffset + vStage * C::Ti::kBytes + box.offset, v, mv, box);
          }
          std::vector<double> S = blockTimesTile<D, kN>(smem, base, wg, base + C::kKOffset + stage * C::Ti::kBytes);
          // softmaxTile's step in float64, masking as it masks.
          const bool masked = gFault == "mask" ? false : t >= tiles.unmasked;
          for (int r = 0; r < ah::kWarpgroupRows; ++r) {
            const int row = wg * ah::kWarpgroupRows + r;
            const int limit = row < nq ? attn::keyLimit(c.causal, s, q0 + row) : 0;
            double rowMax = -INFINITY, sum = 0;
            for (int n = 0; n < kN; ++n) {
              double& x = S[static_cast<size_t>(r * kN + n)];
              x = masked && t * kN + n >= limit ? -INFINITY : x * scale;
              rowMax = std::max(rowMax, x);
            }
            const double mNew = std::max(m[r], rowMax), shift = mNew == -INFINITY ? 0.0 : mNew;
            const double alpha = std::exp(m[r] - shift);
            m[r] = mNew;
            for (int n = 0; n < kN; ++n) sum += (S[static_cast<size_t>(r * kN + n)] = std::exp(S[static_cast<size_t>(r * kN + n)] - shift));
            l[r] = l[r] * alpha + sum;
            for (int d = 0; d < D; ++d) o[static_cast<size_t>(r * D + d)] *= alpha;
          }
          fragTimesTile<D, kN>(o, S, smem, base + C::kVOffset + stage * C::Ti::kBytes);
        }
        for (int r = 0; r < ah::kWarpgroupRows && wg * ah::kWarpgroupRows + r < nq; ++r) {
          const int64_t t = int64_t(s.start) + q0 + wg * ah::kWarpgroupRows + r;
          for (int d = 0; d < D; ++d) {
            out[static_cast<size_t>((t * c.heads + h) * D + d)] = l[r] > 0 ? o[static_cast<size_t>(r * D + d)] / l[r] : 0.0;
          }
          lse[static_cast<size_t>(h * T + t)] = l[r] > 0 ? m[r] + std::log(l[r]) : -INFINITY;
          ++writes[static_cast<size_t>(t * c.heads + h)];
        }
      }
    }
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    if (writes[i] != 1) return "row " + std::to_string(i) + " written " + std::to_string(writes[i]) + " times";
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::string e = compare("out", i, out[i], ref.out[i]); !e.empty()) return e;
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < c.heads; ++h) {
      const size_t i = static_cast<size_t>(h * T + t);
      if (std::string e = compare("lse", i, lse[i], ref.lse[i]); !e.empty()) return e;
    }
  }
  return "";
}

std::string describe(const char* what, const Case& c, int D) {
  std::string lens;
  for (int len : c.lens) lens += (lens.empty() ? "" : ",") + std::to_string(len);
  return std::string("emulated ") + what + " D " + std::to_string(D) + " lens [" + lens + "] heads " +
         std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) + (c.causal ? " causal" : " full");
}

}  // namespace

int run() {
  report("D 64: shared-memory regions and boxes in place, on 1024-byte atoms", checkLayout<64>());
  report("D 128: shared-memory regions and boxes in place, on 1024-byte atoms", checkLayout<128>());
  const Case cases[] = {
      {{300, 0, 129, 64, 1}, 4, 2, true},
      {{200, 77}, 2, 1, false},
      {{128, 520}, 2, 2, true},  // 5 key tiles: the forward's ring wraps at D = 128
      {{5, 190}, 4, 1, true},
  };
  for (const Case& c : cases) {
    report(describe("forward", c, 64), emulateForward<64>(c));
    report(describe("forward", c, 128), emulateForward<128>(c));
    report(describe("backward", c, 64), emulateBackward<64>(c));
    report(describe("backward", c, 128), emulateBackward<128>(c));
  }
  return host_report::failures == 0 ? 0 : 1;
}

}  // namespace attention_emulation

int main(int argc, char** argv) {
  if (argc > 1) attention_emulation::gFault = argv[1];
  return attention_emulation::run();
}
