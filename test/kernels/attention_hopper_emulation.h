// The pieces the Hopper attention emulations (attention_hopper_layout*.cpp) are made of: packed
// inputs, their TMA maps, the two wgmma products as the hardware documents describe them
// (hopper_models.h) read through the kernels' own descriptors, and a float64 attention with its
// gradients. Each piece takes the fault being injected, so the test can show the checks fail.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/hopper/flash_attention_hopper_layout.h"
#include "kernels/attention/flash_attention_layout.h"
#include "test/kernels/hopper_models.h"

namespace attention_emulation {

namespace attn = seqtune::gpu::attn;
namespace ah = seqtune::gpu::attn::hopper;
namespace hx = seqtune::hopper;

extern std::string gFault;  // the broken variant being injected ("" for none)

// "" when got matches want to 1e-9, else what differs at element i of `what`.
inline std::string compare(const char* what, size_t i, double got, double want) {
  if (std::fabs(got - want) <= 1e-9) return "";
  return std::string(what) + "[" + std::to_string(i) + "]: got " + std::to_string(got) + ", want " + std::to_string(want);
}

struct Case {
  std::vector<int> lens;  // documents, empty ones allowed
  int heads, kvHeads;
  bool causal;
};

// A packed [tokens, heads, D] tensor of small exact values, distinct per element.
struct Packed {
  int64_t tokens;
  int heads, D;
  std::vector<double> data;
  Packed(int64_t t, int h, int d, int salt) : tokens(t), heads(h), D(d), data(static_cast<size_t>(t * h * d)) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>((int64_t(i) * 37 + salt * 11) % 17 - 8) / 8.0;
  }
  double at(int64_t token, int head, int d) const { return data[static_cast<size_t>((token * heads + head) * D + d)]; }
};

inline hopper_models::TensorMap mapOf(const Packed& p, int boxRows) {
  const ah::TmaGeometry g = ah::tmaGeometry(p.tokens, p.heads, p.D, boxRows);
  return {{g.dims[0], g.dims[1], g.dims[2]}, {g.strides[0], g.strides[1]}, {g.box[0], g.box[1], g.box[2]}};
}

// Shared memory, one double per 2-byte element, refilled with garbage per CTA.
struct Smem {
  std::vector<double> cells;
  explicit Smem(uint32_t bytes) : cells(bytes / 2, 1e30) {}
  void reset() { std::fill(cells.begin(), cells.end(), 1e30); }
  void load(uint32_t dst, const Packed& p, const hopper_models::TensorMap& map, const ah::BoxAt& box) {
    hopper_models::tmaBox(cells, dst, p.data, map, box.col, box.head, box.row, gFault != "swizzle");
  }
  double at(const hopper_models::Desc& d, bool mnMajor, int mn, int k) const {
    return cells[hopper_models::wgmmaAddress(d, mnMajor, mn, k) / 2];
  }
};

// [64][kN] = (warpgroup wg's block rows at `block`) · (the tile at `tile`)ᵀ over D, through the
// kernels' descriptors (issueBlockTimesTile).
template <int D, int kN>
std::vector<double> blockTimesTile(const Smem& smem, uint32_t block, int wg, uint32_t tile) {
  std::vector<double> out(static_cast<size_t>(ah::kWarpgroupRows * kN), 0.0);
  for (int s = 0; s < D / hx::kMmaK; ++s) {
    const uint32_t skip = gFault == "kstep" ? hx::kMajorStep(s % 4) : 0;
    const auto da = hopper_models::decode(hx::encodeDesc(block + ah::blockDescStart<D>(wg, s), hx::kKMajorLbo, hx::kSbo));
    const auto db = hopper_models::decode(hx::encodeDesc(tile + ah::tileKMajorStart<D, kN>(s) - skip, hx::kKMajorLbo, hx::kSbo));
    for (int r = 0; r < ah::kWarpgroupRows; ++r) {
      for (int n = 0; n < kN; ++n) {
        double sum = 0;
        for (int k = 0; k < hx::kMmaK; ++k) sum += smem.at(da, false, r, k) * smem.at(db, false, n, k);
        out[static_cast<size_t>(r * kN + n)] += sum;
      }
    }
  }
  return out;
}

// acc[64][D] += X · tile, X [64][kRows] handed over as each warp's register fragments (accToA of
// its accumulators, placed where the A fragment layout says), the tile's rows being K, read
// MN-major through the kernels' descriptors (issueFragTimesTile).
template <int D, int kRows>
void fragTimesTile(std::vector<double>& acc, const std::vector<double>& x, const Smem& smem, uint32_t tile) {
  for (int kk = 0; kk < kRows / hx::kMmaK; ++kk) {
    std::vector<double> a(static_cast<size_t>(ah::kWarpgroupRows * 16), NAN);
    for (int warp = 0; warp < 4; ++warp) {
      for (int lane = 0; lane < 32; ++lane) {
        for (int reg = 0; reg < 4; ++reg) {
          for (int h = 0; h < 2; ++h) {
            const attn::RowCol from = attn::accAt(lane, attn::accElemForA(reg, h));
            const double value = x[static_cast<size_t>((16 * warp + from.row) * kRows + 8 * attn::accTileForA(kk, reg) + from.col)];
            const attn::RowCol to = attn::fragAAt(lane, reg, h);
            a[static_cast<size_t>((16 * warp + to.row) * 16 + to.col)] = value;
          }
        }
      }
    }
    const uint32_t lbo = gFault == "vlbo" ? ah::tileMnMajorLbo<D, kRows>() / 2 : ah::tileMnMajorLbo<D, kRows>();
    const auto dt = hopper_models::decode(hx::encodeDesc(tile + ah::tileMnMajorStart(kk), lbo, hx::kSbo));
    for (int r = 0; r < ah::kWarpgroupRows; ++r) {
      for (int d = 0; d < D; ++d) {
        double sum = 0;
        for (int j = 0; j < 16; ++j) sum += a[static_cast<size_t>(r * 16 + j)] * smem.at(dt, true, d, j);
        acc[static_cast<size_t>(r * D + d)] += sum;
      }
    }
  }
}

// [64][64] = dS · (columns [64c, 64c + 64) of warpgroup wg's K block rows): the fast mode's dQ
// product (the kernel's addDq), A read MN-major from the dS tile, B MN-major from the block.
template <int D>
std::vector<double> dsTimesBlock(const Smem& smem, uint32_t dsTile, uint32_t kBlock, int wg, int c) {
  constexpr int kN = ah::BwdConfig<D>::kTileRows;
  std::vector<double> out(static_cast<size_t>(kN * hx::kRowElems), 0.0);
  for (int kk = 0; kk < ah::kWarpgroupRows / hx::kMmaK; ++kk) {
    const auto da = hopper_models::decode(
        hx::encodeDesc(dsTile + ah::tileMnMajorStart(kk), ah::tileMnMajorLbo<64, kN>(), hx::kSbo));
    const auto db = hopper_models::decode(
        hx::encodeDesc(kBlock + ah::blockMnMajorStart<D>(wg, c, kk), ah::Block<D>::kBoxBytes, hx::kSbo));
    for (int q = 0; q < kN; ++q) {
      for (int d = 0; d < hx::kRowElems; ++d) {
        double sum = 0;
        for (int k = 0; k < hx::kMmaK; ++k) sum += smem.at(da, true, q, k) * smem.at(db, true, d, k);
        out[static_cast<size_t>(q * hx::kRowElems + d)] += sum;
      }
    }
  }
  return out;
}

// The float64 attention of one case: softmax weights per (token, head), out, lse (natural log)
// and the gradients dQ, dK, dV for dout.
struct Reference {
  std::vector<double> out, lse, di, dk, dv, dq;  // out, dq [T, H, D]; lse, di [H, T]; dk, dv [T, Hkv, D]
};

inline Reference reference(const Case& c, const std::vector<int32_t>& cu, const Packed& q, const Packed& k,
                           const Packed& v, const Packed* dout, double scale) {
  const int64_t T = q.tokens;
  const int D = q.D, H = c.heads, Hkv = c.kvHeads;
  Reference ref{std::vector<double>(static_cast<size_t>(T * H * D)), std::vector<double>(static_cast<size_t>(H * T)),
                std::vector<double>(static_cast<size_t>(H * T)), std::vector<double>(static_cast<size_t>(T * Hkv * D)),
                std::vector<double>(static_cast<size_t>(T * Hkv * D)), std::vector<double>(static_cast<size_t>(T * H * D))};
  for (size_t b = 0; b < c.lens.size(); ++b) {
    for (int h = 0; h < H; ++h) {
      const int g = attn::kvHeadOf(h, H, Hkv);
      for (int i = 0; i < c.lens[b]; ++i) {
        const int64_t t = cu[b] + i;
        const int keys = c.causal ? i + 1 : c.lens[b];
        std::vector<double> w(static_cast<size_t>(keys));
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < keys; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += q.at(t, h, d) * k.at(cu[b] + j, g, d);
          mx = std::max(mx, w[j] = dot * scale);
        }
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (double& x : w) x /= sum;
        ref.lse[static_cast<size_t>(h * T + t)] = mx + std::log(sum);
        double di = 0;
        for (int d = 0; d < D; ++d) {
          double o = 0;
          for (int j = 0; j < keys; ++j) o += w[j] * v.at(cu[b] + j, g, d);
          ref.out[static_cast<size_t>((t * H + h) * D + d)] = o;
          if (dout) di += dout->at(t, h, d) * o;
        }
        ref.di[static_cast<size_t>(h * T + t)] = di;
        if (!dout) continue;
        for (int j = 0; j < keys; ++j) {
          double dp = 0;
          for (int d = 0; d < D; ++d) dp += dout->at(t, h, d) * v.at(cu[b] + j, g, d);
          const double ds = w[j] * (dp - di);
          for (int d = 0; d < D; ++d) {
            const size_t kv = static_cast<size_t>(((cu[b] + j) * Hkv + g) * D + d);
            ref.dv[kv] += w[j] * dout->at(t, h, d);
            ref.dk[kv] += scale * ds * q.at(t, h, d);
            ref.dq[static_cast<size_t>((t * H + h) * D + d)] += scale * ds * k.at(cu[b] + j, g, d);
          }
        }
      }
    }
  }
  return ref;
}

}  // namespace attention_emulation
