// Host checks of the Hopper attention forward's index math (kernels/flash_attention_hopper_layout.h),
// run by attention-hopper-layout.test.ts without a GPU. The emulated kernel walks the kernel's
// index path for whole packed batches: the block search and key-tile ranges of the
// FlashAttention-2 kernel (flash_attention_layout.h), the header's TMA boxes and tensor maps, Q,
// K and V landing in shared memory as TMA puts them, S = Q·Kᵀ read through the header's wgmma
// descriptors, P handed to the P·V wgmma as register fragments (the accumulator-to-A mapping of
// flash_attention_layout.h) and V read through its MN-major descriptor, the stage ring's order,
// and the rows each warp stores. The models of TMA and wgmma are the documents' (hopper_models.h),
// and the result is compared with a float64 attention written out here.
//
// Usage: attention_hopper_layout [fault], fault one of swizzle (TMA writes unswizzled), qbox (the
// second warpgroup's Q box lands on the first's), kstep (the K descriptor misses its 32-byte step),
// vlbo (V's LBO halved), mask (every tile taken as unmasked), stage (K and V of a tile in
// different stages): the checks must then fail. Prints "ok <check>" or "FAIL <check>: ...";
// exits 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/flash_attention_hopper_layout.h"
#include "kernels/flash_attention_layout.h"
#include "test/kernels/hopper_models.h"

namespace attn = seqtune::gpu::attn;
namespace ah = seqtune::gpu::attn::hopper;
using hopper_models::decode;
using hopper_models::Desc;
using hopper_models::wgmmaAddress;

namespace {

std::string gFault;
int gFailures = 0;

void report(const std::string& check, const std::string& error) {
  if (error.empty()) {
    std::printf("ok %s\n", check.c_str());
  } else {
    ++gFailures;
    std::printf("FAIL %s: %s\n", check.c_str(), error.c_str());
  }
}

std::string fmt(const char* f, double a = 0, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

struct Case {
  std::vector<int> lens;  // documents, empty ones allowed
  int heads, kvHeads;
  bool causal;
};

// Small exact values, distinct per element: any misplaced element changes the result.
double valueAt(int64_t i, int salt) { return static_cast<double>(((i * 37 + salt * 11) % 17) - 8) / 8.0; }

struct Packed {
  int64_t tokens;
  int heads;
  std::vector<double> data;  // [tokens, heads, D]
};

Packed makePacked(int64_t tokens, int heads, int D, int salt) {
  Packed p{tokens, heads, std::vector<double>(static_cast<size_t>(tokens * heads * D))};
  for (size_t i = 0; i < p.data.size(); ++i) p.data[i] = valueAt(static_cast<int64_t>(i), salt);
  return p;
}

hopper_models::TensorMap mapOf(const Packed& p, int D, int boxRows) {
  const ah::TmaGeometry g = ah::tmaGeometry(p.tokens, p.heads, D, boxRows);
  return {{g.dims[0], g.dims[1], g.dims[2]}, {g.strides[0], g.strides[1]}, {g.box[0], g.box[1], g.box[2]}};
}

// Runs the kernel's index path for one batch; "" when every (token, head) row of out and lse is
// written exactly once and matches the float64 reference.
template <int D>
std::string emulate(const Case& c) {
  using C = ah::FwdConfig<D>;
  std::vector<int32_t> cu{0};
  for (int len : c.lens) cu.push_back(cu.back() + len);
  const int batch = static_cast<int>(c.lens.size());
  const int64_t T = cu.back();
  const Packed q = makePacked(T, c.heads, D, 1), k = makePacked(T, c.kvHeads, D, 2), v = makePacked(T, c.kvHeads, D, 3);
  const hopper_models::TensorMap mq = mapOf(q, D, ah::kWarpgroupRows), mk = mapOf(k, D, C::kTileRows), mv = mapOf(v, D, C::kTileRows);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const bool swizzle = gFault != "swizzle";

  std::vector<double> out(static_cast<size_t>(T * c.heads * D), 0.0), lse(static_cast<size_t>(T * c.heads), 0.0);
  std::vector<int> writes(static_cast<size_t>(T * c.heads), 0);
  const uint32_t base = 5 * seqtune::hopper::kAtomBytes;  // any 1024-aligned shared address
  std::vector<double> smem((base + C::kBarrierOffset) / 2, 0.0);

  const int64_t blocks = attn::virtualBlocks(batch, T, ah::kBlockRows);
  for (int64_t vb = 0; vb < blocks; ++vb) {
    for (int h = 0; h < c.heads; ++h) {
      const attn::BlockSlot slot = attn::findBlock(cu.data(), batch, ah::kBlockRows, vb);
      if (slot.block < 0) continue;
      const attn::Sequence s = attn::sequenceOf(cu.data(), nullptr, nullptr, slot.doc, T, 0);
      const int q0 = slot.block * ah::kBlockRows;
      if (!s.ok || q0 >= s.len) continue;
      const int g = attn::kvHeadOf(h, c.heads, c.kvHeads);
      const int nq = std::min(ah::kBlockRows, s.len - q0);
      const attn::TileRange tiles = attn::keyTilesOf(c.causal, s, q0, ah::kBlockRows, C::kTileRows);
      std::fill(smem.begin(), smem.end(), 1e30);  // stale data must not matter
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        for (int ch = 0; ch < C::B::kChunks; ++ch) {
          ah::BoxAt box = ah::blockBox<D>(gFault == "qbox" ? 0 : wg, ch, int64_t(s.start) + q0, h);
          box.row = ah::blockBox<D>(wg, ch, int64_t(s.start) + q0, h).row;
          hopper_models::tmaBox(smem, base + box.offset, q.data, mq, box.col, box.head, box.row, swizzle);
        }
      }
      for (int wg = 0; wg < ah::kConsumers; ++wg) {
        // Per row of the warpgroup: running max and sum (natural log domain), unnormalised O.
        std::vector<double> m(ah::kWarpgroupRows, -INFINITY), l(ah::kWarpgroupRows, 0.0);
        std::vector<double> o(static_cast<size_t>(ah::kWarpgroupRows * D), 0.0);
        for (int t = 0; t < tiles.count; ++t) {
          const ah::StageUse use = ah::stageOf<C::kStages>(t);
          const int vStage = gFault == "stage" ? (use.stage + 1) % C::kStages : use.stage;
          const uint32_t kTile = base + C::kKOffset + use.stage * C::Ti::kBytes;
          for (int ch = 0; ch < C::B::kChunks; ++ch) {
            const ah::BoxAt kb = ah::tileBox<D, C::kTileRows>(ch, int64_t(s.start) + int64_t(t) * C::kTileRows, g);
            hopper_models::tmaBox(smem, kTile + kb.offset, k.data, mk, kb.col, kb.head, kb.row, swizzle);
            hopper_models::tmaBox(smem, base + C::kVOffset + vStage * C::Ti::kBytes + kb.offset, v.data, mv, kb.col,
                                  kb.head, kb.row, swizzle);
          }
          const uint32_t vTile = base + C::kVOffset + use.stage * C::Ti::kBytes;
          // S = Q·Kᵀ, K-step by K-step through the descriptors.
          std::vector<double> S(static_cast<size_t>(ah::kWarpgroupRows * C::kTileRows), 0.0);
          for (int st = 0; st < D / seqtune::hopper::kMmaK; ++st) {
            const uint32_t kStart =
                kTile + ah::tileKMajorStart<D, C::kTileRows>(st) - (gFault == "kstep" ? seqtune::hopper::kMajorStep(st % 4) : 0);
            const Desc dq = decode(seqtune::hopper::encodeDesc(base + ah::blockDescStart<D>(wg, st), seqtune::hopper::kKMajorLbo, seqtune::hopper::kSbo));
            const Desc dk = decode(seqtune::hopper::encodeDesc(kStart, seqtune::hopper::kKMajorLbo, seqtune::hopper::kSbo));
            for (int r = 0; r < ah::kWarpgroupRows; ++r) {
              for (int n = 0; n < C::kTileRows; ++n) {
                double sum = 0;
                for (int kk = 0; kk < 16; ++kk) {
                  sum += smem[wgmmaAddress(dq, false, r, kk) / 2] * smem[wgmmaAddress(dk, false, n, kk) / 2];
                }
                S[static_cast<size_t>(r * C::kTileRows + n)] += sum;
              }
            }
          }
          // The online softmax on the accumulator rows, masked as softmaxTile masks.
          const bool masked = gFault == "mask" ? false : t >= tiles.unmasked;
          std::vector<double> P(S.size(), 0.0), alpha(ah::kWarpgroupRows, 1.0);
          for (int r = 0; r < ah::kWarpgroupRows; ++r) {
            const int row = wg * ah::kWarpgroupRows + r;
            const int limit = row < nq ? attn::keyLimit(c.causal, s, q0 + row) : 0;
            double rowMax = -INFINITY;
            for (int n = 0; n < C::kTileRows; ++n) {
              double x = S[static_cast<size_t>(r * C::kTileRows + n)] * scale;
              if (masked && t * C::kTileRows + n >= limit) x = -INFINITY;
              S[static_cast<size_t>(r * C::kTileRows + n)] = x;
              rowMax = std::max(rowMax, x);
            }
            const double mNew = std::max(m[r], rowMax), shift = mNew == -INFINITY ? 0.0 : mNew;
            alpha[r] = std::exp(m[r] - shift);
            m[r] = mNew;
            double sum = 0;
            for (int n = 0; n < C::kTileRows; ++n) {
              const double p = std::exp(S[static_cast<size_t>(r * C::kTileRows + n)] - shift);
              P[static_cast<size_t>(r * C::kTileRows + n)] = p;
              sum += p;
            }
            l[r] = l[r] * alpha[r] + sum;
          }
          for (int r = 0; r < ah::kWarpgroupRows; ++r) {
            for (int d = 0; d < D; ++d) o[static_cast<size_t>(r * D + d)] *= alpha[r];
          }
          // O += P·V: each warp's A fragment of K-step kk built from its S accumulators as accToA
          // does, placed where the fragment layout says, times V through its descriptor.
          for (int kk = 0; kk < C::kTileRows / 16; ++kk) {
            std::vector<double> A(static_cast<size_t>(ah::kWarpgroupRows * 16), NAN);
            for (int warp = 0; warp < 4; ++warp) {
              for (int lane = 0; lane < 32; ++lane) {
                for (int reg = 0; reg < 4; ++reg) {
                  for (int hh = 0; hh < 2; ++hh) {
                    const attn::RowCol acc = attn::accAt(lane, attn::accElemForA(reg, hh));
                    const int tile = attn::accTileForA(kk, reg);
                    const double value = P[static_cast<size_t>((16 * warp + acc.row) * C::kTileRows + 8 * tile + acc.col)];
                    const attn::RowCol at = attn::fragAAt(lane, reg, hh);
                    A[static_cast<size_t>((16 * warp + at.row) * 16 + at.col)] = value;
                  }
                }
              }
            }
            const uint32_t lbo = gFault == "vlbo" ? ah::tileMnMajorLbo<D, C::kTileRows>() / 2 : ah::tileMnMajorLbo<D, C::kTileRows>();
            const Desc dv = decode(seqtune::hopper::encodeDesc(vTile + ah::tileMnMajorStart(kk), lbo, seqtune::hopper::kSbo));
            for (int r = 0; r < ah::kWarpgroupRows; ++r) {
              for (int d = 0; d < D; ++d) {
                double sum = 0;
                for (int j = 0; j < 16; ++j) sum += A[static_cast<size_t>(r * 16 + j)] * smem[wgmmaAddress(dv, true, d, j) / 2];
                o[static_cast<size_t>(r * D + d)] += sum;
              }
            }
          }
        }
        // The epilogue: each warp's 16 rows, those below nq stored.
        for (int warp = 0; warp < 4; ++warp) {
          const int row0 = wg * ah::kWarpgroupRows + 16 * warp;
          for (int r = 0; r < 16 && r < nq - row0; ++r) {
            const int local = 16 * warp + r;
            const int64_t token = int64_t(s.start) + q0 + row0 + r;
            const double inv = l[local] > 0 ? 1.0 / l[local] : 0.0;
            for (int d = 0; d < D; ++d) {
              out[static_cast<size_t>((token * c.heads + h) * D + d)] = o[static_cast<size_t>(local * D + d)] * inv;
            }
            lse[static_cast<size_t>(h * T + token)] = l[local] > 0 ? m[local] + std::log(l[local]) : -INFINITY;
            ++writes[static_cast<size_t>(token * c.heads + h)];
          }
        }
      }
    }
  }

  // The reference: per document, head and query, a softmax over the visible keys.
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < c.heads; ++h) {
      const int g = attn::kvHeadOf(h, c.heads, c.kvHeads);
      for (int i = 0; i < c.lens[b]; ++i) {
        const int64_t token = cu[b] + i;
        const int keys = c.causal ? i + 1 : c.lens[b];
        std::vector<double> sc(keys);
        double mx = -INFINITY;
        for (int j = 0; j < keys; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) {
            dot += q.data[static_cast<size_t>((token * c.heads + h) * D + d)] *
                   k.data[static_cast<size_t>(((cu[b] + j) * c.kvHeads + g) * D + d)];
          }
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        if (writes[static_cast<size_t>(token * c.heads + h)] != 1) {
          return fmt("token %g head %g written %g times", double(token), h, writes[static_cast<size_t>(token * c.heads + h)]);
        }
        const double wantLse = mx + std::log(sum), gotLse = lse[static_cast<size_t>(h * T + token)];
        if (!(std::fabs(gotLse - wantLse) <= 1e-9)) return fmt("token %g head %g: lse %g, want %g", double(token), h, gotLse, wantLse);
        for (int d = 0; d < D; ++d) {
          double want = 0;
          for (int j = 0; j < keys; ++j) want += sc[j] * v.data[static_cast<size_t>(((cu[b] + j) * c.kvHeads + g) * D + d)];
          want /= sum;
          const double got = out[static_cast<size_t>((token * c.heads + h) * D + d)];
          if (!(std::fabs(got - want) <= 1e-9)) {
            return fmt("token %g head %g dim %g: got %.12g", double(token), h, d, got) + fmt(", want %.12g", want);
          }
        }
      }
    }
  }
  return "";
}

std::string describe(const Case& c, int D) {
  std::string lens;
  for (int len : c.lens) lens += (lens.empty() ? "" : ",") + std::to_string(len);
  return "emulated forward D " + std::to_string(D) + " lens [" + lens + "] heads " + std::to_string(c.heads) + "/" +
         std::to_string(c.kvHeads) + (c.causal ? " causal" : " full");
}

template <int D>
std::string checkConfig() {
  using C = ah::FwdConfig<D>;
  for (int wg = 0; wg < ah::kConsumers; ++wg) {
    for (int ch = 0; ch < C::B::kChunks; ++ch) {
      const ah::BoxAt box = ah::blockBox<D>(wg, ch, 0, 0);
      if (box.offset % seqtune::hopper::kAtomBytes != 0 || box.offset + C::B::kBoxBytes > static_cast<uint32_t>(C::B::kBytes)) {
        return fmt("Q box (%g, %g) outside Q", wg, ch);
      }
    }
  }
  if (C::B::kBytes > C::kKOffset || C::kKOffset + C::kStages * C::Ti::kBytes > C::kVOffset ||
      C::kVOffset + C::kStages * C::Ti::kBytes > C::kBarrierOffset) {
    return "regions overlap";
  }
  if (C::kTileRows % 64 != 0 || C::Ti::kBoxBytes % seqtune::hopper::kAtomBytes != 0) return fmt("key tile %g", C::kTileRows);
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) gFault = argv[1];
  report("D 64: shared-memory regions and boxes in place, on 1024-byte atoms", checkConfig<64>());
  report("D 128: shared-memory regions and boxes in place, on 1024-byte atoms", checkConfig<128>());
  const Case cases[] = {
      {{300, 0, 129, 64, 1}, 4, 2, true},
      {{200, 77}, 2, 1, false},
      {{128, 256}, 2, 2, true},
      {{5, 190}, 4, 1, true},
  };
  for (const Case& c : cases) {
    report(describe(c, 64), emulate<64>(c));
    report(describe(c, 128), emulate<128>(c));
  }
  return gFailures == 0 ? 0 : 1;
}
