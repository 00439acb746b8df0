// The emulated Hopper backward (kernels/hopper/flash_attention_hopper_bwd.cu) for attention_hopper_layout:
// CTAs over (128-key block, kv head); the K and V blocks loaded once; 64-query tiles of Q and dO
// streamed head by head of the group (queryTileAt) through the ring; per warpgroup Sᵀ = K·Qᵀ and
// dPᵀ = V·dOᵀ through the descriptors, Pᵀ from the forward's lse, masked unless
// queryTileUnmasked, then dV += Pᵀ·dO and dK += dSᵀ·Q with the first operand as register
// fragments, and (the fast mode) dSᵀ stored into the warpgroup's dS tile as the kernel stores it
// and dQ += dS·K read through the dQ descriptors; the rows below the document's end stored, dK
// and dQ scaled. Compared with the float64 gradients.
#include "test/kernels/attention_hopper_emulation.h"

namespace attention_emulation {

namespace {

struct Grads {
  std::vector<double> dq, dk, dv;
  std::vector<int> kvWrites;
};

template <int D>
void emulateKernel(const Case& c, const std::vector<int32_t>& cu, const Packed& q, const Packed& k, const Packed& v,
                   const Packed& dout, const Reference& ref, double scale, Grads& out) {
  using C = ah::BwdConfig<D>;
  constexpr int kN = C::kTileRows;
  const int batch = static_cast<int>(c.lens.size()), group = c.heads / c.kvHeads;
  const int64_t T = q.tokens;
  const auto mBlock = mapOf(k, ah::kWarpgroupRows), mTile = mapOf(q, kN);
  const uint32_t base = 3 * hx::kAtomBytes;
  Smem smem(base + C::kBarrierOffset);
  for (int64_t vb = 0; vb < attn::virtualBlocks(batch, T, ah::kBlockRows); ++vb) {
    for (int g = 0; g < c.kvHeads; ++g) {
      const attn::BlockSlot slot = attn::findBlock(cu.data(), batch, ah::kBlockRows, vb);
      if (slot.block < 0) continue;
      const attn::Sequence s = attn::sequenceOf(cu.data(), nullptr, nullptr, slot.doc, T, 0);
      const int k0 = slot.block * ah::kBlockRows;
      if (!s.ok || k0 >= s.len) continue;
      const int nk = std::min(ah::kBlockRows, s.len - k0);
      const attn::TileRange tiles = attn::queryTilesOf(c.causal, s, k0, nk, kN);
      smem.reset();
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        for (int ch = 0; ch < ah::Block<D>::kChunks; ++ch) {
          ah::BoxAt box = ah::blockBox<D>(gFault == "qbox" ? 0 : wg, ch, int64_t(s.start) + k0, g);
          box.row = ah::blockBox<D>(wg, ch, int64_t(s.start) + k0, g).row;
          smem.load(base + C::kKOffset + box.offset, k, mBlock, box);
          smem.load(base + C::kVOffset + box.offset, v, mBlock, box);
        }
      }
      const size_t accSize = static_cast<size_t>(ah::kWarpgroupRows * D);
      std::vector<std::vector<double>> dk(ah::kConsumers, std::vector<double>(accSize, 0.0)), dv(dk);
      for (int u = 0; u < group * tiles.count; ++u) {
        const ah::QueryTileAt at = ah::queryTileAt(g, group, tiles.first, tiles.count, u, kN);
        const int stage = ah::stageOf<C::kStages>(u).stage, doStage = gFault == "stage" ? (stage + 1) % C::kStages : stage;
        for (int ch = 0; ch < ah::Block<D>::kChunks; ++ch) {
          const ah::BoxAt box = ah::tileBox<D, kN>(ch, int64_t(s.start) + at.i0, at.h);
          smem.load(base + C::kQOffset + stage * C::Ti::kBytes + box.offset, q, mTile, box);
          smem.load(base + C::kDoOffset + doStage * C::Ti::kBytes + box.offset, dout, mTile, box);
        }
        const uint32_t qTile = base + C::kQOffset + stage * C::Ti::kBytes, doTile = base + C::kDoOffset + stage * C::Ti::kBytes;
        for (int wg = 0; wg < ah::kConsumers; ++wg) {
          const int kw = k0 + wg * ah::kWarpgroupRows;
          std::vector<double> pt = blockTimesTile<D, kN>(smem, base + C::kKOffset, wg, qTile);
          std::vector<double> dst = blockTimesTile<D, kN>(smem, base + C::kVOffset, wg, doTile);
          const bool masked = gFault == "mask" ? false : !attn::queryTileUnmasked(c.causal, s, at.i0, kN, kw, ah::kWarpgroupRows);
          const uint32_t dsTile = base + C::kDsOffset + wg * C::kDsBytes;
          for (int r = 0; r < ah::kWarpgroupRows; ++r) {
            for (int n = 0; n < kN; ++n) {
              const int i = at.i0 + n, j = kw + r;
              const bool inside = i < s.len;
              const double lse = inside ? ref.lse[static_cast<size_t>(at.h * T + s.start + i)] : INFINITY;
              const double di = inside ? ref.di[static_cast<size_t>(at.h * T + s.start + i)] : 0.0;
              const size_t e = static_cast<size_t>(r * kN + n);
              double p = std::exp(pt[e] * scale - lse);
              if (masked && !attn::attends(c.causal, s, i, j)) p = 0;
              pt[e] = p;
              dst[e] = p * (dst[e] - di);
              // dSᵀ into the dS tile as addDq stores it ("dstile": unswizzled).
              const uint32_t at2 = dsTile + ah::dsOffset(r, n);
              smem.cells[(gFault == "dstile" ? at2 : hx::swizzle128(at2)) / 2] = dst[e];
            }
          }
          fragTimesTile<D, kN>(dv[wg], pt, smem, doTile);
          fragTimesTile<D, kN>(dk[wg], dst, smem, qTile);
          for (int ch = 0; ch < D / hx::kRowElems; ++ch) {
            const std::vector<double> dq = dsTimesBlock<D>(smem, dsTile, base + C::kKOffset, wg, ch);
            for (int n = 0; n < kN && at.i0 + n < s.len; ++n) {
              for (int d = 0; d < hx::kRowElems; ++d) {
                out.dq[static_cast<size_t>(((s.start + at.i0 + n) * c.heads + at.h) * D + ch * hx::kRowElems + d)] +=
                    scale * dq[static_cast<size_t>(n * hx::kRowElems + d)];
              }
            }
          }
        }
      }
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        for (int r = 0; r < ah::kWarpgroupRows && wg * ah::kWarpgroupRows + r < nk; ++r) {
          const int64_t t = int64_t(s.start) + k0 + wg * ah::kWarpgroupRows + r;
          for (int d = 0; d < D; ++d) {
            const size_t at = static_cast<size_t>((t * c.kvHeads + g) * D + d), e = static_cast<size_t>(r * D + d);
            out.dk[at] = dk[wg][e] * scale;
            out.dv[at] = dv[wg][e];
          }
          ++out.kvWrites[static_cast<size_t>(t * c.kvHeads + g)];
        }
      }
    }
  }
}

}  // namespace

template <int D>
std::string emulateBackward(const Case& c) {
  std::vector<int32_t> cu{0};
  for (int len : c.lens) cu.push_back(cu.back() + len);
  const int64_t T = cu.back();
  const Packed q(T, c.heads, D, 1), k(T, c.kvHeads, D, 2), v(T, c.kvHeads, D, 3), dout(T, c.heads, D, 4);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const Reference ref = reference(c, cu, q, k, v, &dout, scale);
  Grads out{std::vector<double>(ref.dq.size(), 0.0), std::vector<double>(ref.dk.size(), NAN),
            std::vector<double>(ref.dv.size(), NAN), std::vector<int>(static_cast<size_t>(T * c.kvHeads), 0)};
  emulateKernel<D>(c, cu, q, k, v, dout, ref, scale, out);
  for (size_t i = 0; i < out.kvWrites.size(); ++i) {
    if (out.kvWrites[i] != 1) return "kv row " + std::to_string(i) + " not written exactly once";
  }
  for (size_t i = 0; i < out.dk.size(); ++i) {
    if (std::string e = compare("dk", i, out.dk[i], ref.dk[i]); !e.empty()) return e;
    if (std::string e = compare("dv", i, out.dv[i], ref.dv[i]); !e.empty()) return e;
  }
  for (size_t i = 0; i < out.dq.size(); ++i) {
    if (std::string e = compare("dq", i, out.dq[i], ref.dq[i]); !e.empty()) return e;
  }
  return "";
}

template std::string emulateBackward<64>(const Case&);
template std::string emulateBackward<128>(const Case&);

}  // namespace attention_emulation
