// Which tiles the attention kernels compute (see attention_layout.cpp). For awkward documents
// (empty, 1 token, 17, 65, 129, 4097 tokens), GQA ratios 1, 4 and 8, causal or not, the packed and
// the KV-cache layouts: walking the CTAs and tiles exactly as the kernels do, every (head, query,
// key) pair that native/cpu attends to is computed by exactly one tile with the mask passing it,
// and no other pair is computed unmasked. Also: every query row is owned by one CTA, every key row
// by one backward CTA per kv head, decode splits partition the keys, and bad metadata never leads
// out of bounds.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention/flash_attention_layout.h"

using namespace seqtune::gpu::attn;

extern std::string gFault;
void report(const std::string& check, const std::string& error);

namespace {

// A batch: cuSeqlens plus, for the cache layout, qOffset and kvLens (empty for packed).
struct Batch {
  std::string name;
  std::vector<int32_t> cu, qOffset, kvLens;
  int maxTokens = 0;
  int batch() const { return static_cast<int>(cu.size()) - 1; }
  int tokens() const { return cu.back(); }
  bool cache() const { return !kvLens.empty(); }
};

Batch packed(const std::string& name, const std::vector<int>& lengths) {
  Batch b{name, {0}, {}, {}, 0};
  for (int len : lengths) b.cu.push_back(b.cu.back() + len);
  return b;
}

// The reference's visibility (native/cpu/attention_kernels.h visibleKeys), stated independently.
bool oracle(const Batch& batch, bool causal, int b, int i, int j) {
  const int len = batch.cu[b + 1] - batch.cu[b];
  if (i < 0 || i >= len || j < 0) return false;
  const int keys = batch.cache() ? batch.kvLens[b] : len;
  const int64_t position = (batch.cache() ? batch.qOffset[b] : 0) + int64_t(i);
  const int64_t visible = causal ? std::min<int64_t>(position + 1, keys) : keys;
  return j < visible;
}

// Counts of how often each (query, key) pair of sequence b (for one head) was computed unmasked.
struct Counts {
  int len, keys;
  std::vector<uint8_t> n;
  Counts(int l, int k) : len(l), keys(k), n(static_cast<size_t>(l) * k, 0) {}
};

std::string errorAt(const char* what, int b, int i, int j) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: sequence %d, query %d, key %d", what, b, i, j);
  return buf;
}

// Records one computed pair; a pair outside the sequence or not attended is an error.
std::string hit(const Batch& batch, bool causal, int b, Counts& c, int i, int j) {
  if (i < 0 || i >= c.len || j < 0 || j >= c.keys) return errorAt("pair outside the sequence computed unmasked", b, i, j);
  if (!oracle(batch, causal, b, i, j)) return errorAt("masked pair computed unmasked", b, i, j);
  if (++c.n[static_cast<size_t>(i) * c.keys + j] > 1) return errorAt("pair computed twice", b, i, j);
  return "";
}

std::string complete(const Batch& batch, bool causal, int b, const Counts& c) {
  for (int i = 0; i < c.len; ++i) {
    for (int j = 0; j < c.keys; ++j) {
      if (oracle(batch, causal, b, i, j) && c.n[static_cast<size_t>(i) * c.keys + j] != 1) {
        return errorAt("attended pair never computed", b, i, j);
      }
    }
  }
  return "";
}

int keysOf(const Batch& batch, int b) { return batch.cache() ? batch.kvLens[b] : batch.cu[b + 1] - batch.cu[b]; }

const int32_t* qOffsetPtr(const Batch& b) { return b.cache() ? b.qOffset.data() : nullptr; }
const int32_t* kvLensPtr(const Batch& b) { return b.cache() ? b.kvLens.data() : nullptr; }

// The forward kernel (and the deterministic dQ kernel): CTAs over virtual query blocks, key tiles
// [0, count), the mask from `unmasked` on; padding rows get limit 0.
std::string forwardCoverage(const Batch& batch, bool causal, int bm, int bn) {
  const int B = batch.batch();
  std::vector<Counts> counts;
  std::vector<std::vector<int>> owner(B);
  for (int b = 0; b < B; ++b) {
    counts.emplace_back(batch.cu[b + 1] - batch.cu[b], keysOf(batch, b));
    owner[b].assign(counts[b].len, 0);
  }
  const int64_t blocks = virtualBlocks(B, batch.tokens(), bm);
  for (int64_t v = 0; v < blocks; ++v) {
    const BlockSlot slot = findBlock(batch.cu.data(), B, bm, v);
    if (slot.block < 0) return "negative block for valid metadata";
    const Sequence s = sequenceOf(batch.cu.data(), qOffsetPtr(batch), kvLensPtr(batch), slot.doc, batch.tokens(),
                                  batch.maxTokens);
    if (!s.ok) return "valid metadata judged bad";
    const int q0 = slot.block * bm;
    if (q0 >= s.len) continue;
    const int nq = std::min(bm, s.len - q0);
    for (int r = 0; r < nq; ++r) owner[slot.doc][q0 + r]++;
    TileRange tiles = keyTilesOf(causal, s, q0, bm, bn);
    if (gFault == "mask") tiles.unmasked += 1;
    const int keyEnd = tiles.count > 0 ? keyLimit(causal, s, q0 + nq - 1) : 0;
    if (keyEnd > s.keys) return errorAt("loads keys past the sequence", slot.doc, q0, keyEnd);
    for (int t = tiles.first; t < tiles.count; ++t) {
      const bool masked = t >= tiles.unmasked;
      if (!masked && q0 + bm > s.len) return errorAt("unmasked tile with padding rows", slot.doc, q0, t * bn);
      for (int r = 0; r < bm; ++r) {
        const int limit = r < nq ? keyLimit(causal, s, q0 + r) : 0;
        for (int c = 0; c < bn; ++c) {
          const int j = t * bn + c;
          if (masked && j >= limit) continue;
          if (j >= keyEnd) return errorAt("unmasked key past the loaded ones", slot.doc, q0 + r, j);
          const std::string e = hit(batch, causal, slot.doc, counts[slot.doc], q0 + r, j);
          if (!e.empty()) return e;
        }
      }
    }
  }
  for (int b = 0; b < B; ++b) {
    for (int i = 0; i < counts[b].len; ++i) {
      if (owner[b][i] != 1) return errorAt("query row not owned by exactly one CTA", b, i, owner[b][i]);
    }
    const std::string e = complete(batch, causal, b, counts[b]);
    if (!e.empty()) return e;
  }
  return "";
}

// The backward's key-block kernel (packed): CTAs over virtual key blocks and kv heads, steps over
// the group's heads and the query tiles of queryTilesOf; mask unless queryTileUnmasked.
std::string backwardCoverage(const Batch& batch, bool causal, int heads, int kvHeads, int bm, int bn) {
  const int B = batch.batch(), group = heads / kvHeads;
  std::vector<std::vector<Counts>> counts(heads);
  std::vector<std::vector<int>> keyOwner(kvHeads, std::vector<int>(batch.tokens(), 0));
  for (int h = 0; h < heads; ++h) {
    for (int b = 0; b < B; ++b) counts[h].emplace_back(batch.cu[b + 1] - batch.cu[b], keysOf(batch, b));
  }
  const int64_t blocks = virtualBlocks(B, batch.tokens(), bn);
  for (int g = 0; g < kvHeads; ++g) {
    for (int64_t v = 0; v < blocks; ++v) {
      const BlockSlot slot = findBlock(batch.cu.data(), B, bn, v);
      const Sequence s = sequenceOf(batch.cu.data(), nullptr, nullptr, slot.doc, batch.tokens(), 0);
      const int k0 = slot.block * bn;
      if (!s.ok || slot.block < 0) return "valid metadata judged bad";
      if (k0 >= s.len) continue;
      const int nk = std::min(bn, s.len - k0);
      for (int c = 0; c < nk; ++c) keyOwner[g][s.start + k0 + c]++;
      const TileRange tiles = queryTilesOf(causal, s, k0, nk, bm);
      for (int n = 0; n < group * tiles.count; ++n) {
        const int h = g * group + n / tiles.count, i0 = (tiles.first + n % tiles.count) * bm;
        if (kvHeadOf(h, heads, kvHeads) != g) return "a head reads another group's kv head";
        bool masked = !queryTileUnmasked(causal, s, i0, bm, k0, bn);
        if (gFault == "mask" && i0 == k0) masked = false;
        for (int r = 0; r < bm; ++r) {
          for (int c = 0; c < bn; ++c) {
            if (masked && !attends(causal, s, i0 + r, k0 + c)) continue;
            const std::string e = hit(batch, causal, slot.doc, counts[h][slot.doc], i0 + r, k0 + c);
            if (!e.empty()) return e;
          }
        }
      }
    }
  }
  for (int g = 0; g < kvHeads; ++g) {
    for (int t = 0; t < batch.tokens(); ++t) {
      if (keyOwner[g][t] != 1) return errorAt("key row not owned by exactly one CTA", g, t, keyOwner[g][t]);
    }
  }
  for (int h = 0; h < heads; ++h) {
    for (int b = 0; b < B; ++b) {
      const std::string e = complete(batch, causal, b, counts[h][b]);
      if (!e.empty()) return e;
    }
  }
  return "";
}

// The decoding kernel: CTA (split, kv head, sequence) over rows rr = i · group + hl, keys of its
// split in tiles of 64 from range.begin, each row limited to min(range.end, its key limit).
std::string decodeCoverage(const Batch& batch, bool causal, int group, int splits) {
  for (int b = 0; b < batch.batch(); ++b) {
    const Sequence s = sequenceOf(batch.cu.data(), qOffsetPtr(batch), kvLensPtr(batch), b, batch.tokens(),
                                  batch.maxTokens);
    if (!s.ok) return "valid metadata judged bad";
    if (s.len == 0) continue;
    std::vector<Counts> counts(group, Counts(s.len, s.keys));
    const int keyEnd = keyLimit(causal, s, s.len - 1);
    int covered = 0;
    for (int sp = 0; sp < splits; ++sp) {
      KeyRange range = splitRange(keyEnd, splits, sp, 64);
      if (gFault == "split" && sp > 0) range.begin -= 1;
      if (range.begin != std::min(covered, keyEnd) && range.end > range.begin) return "splits do not tile the keys";
      covered = std::max(covered, range.end);
      for (int rr = 0; rr < s.len * group; ++rr) {
        const int limit = std::min(range.end, keyLimit(causal, s, rr / group));
        for (int j = range.begin; j < range.end; ++j) {
          if (j >= limit) continue;
          const std::string e = hit(batch, causal, b, counts[rr % group], rr / group, j);
          if (!e.empty()) return e;
        }
      }
    }
    if (covered != keyEnd) return "splits do not reach the last visible key";
    for (int hl = 0; hl < group; ++hl) {
      const std::string e = complete(batch, causal, b, counts[hl]);
      if (!e.empty()) return e;
    }
  }
  return "";
}

// kvCacheWrite's row -> sequence search, and the CTA search on garbage metadata.
std::string searchChecks(const Batch& batch, std::mt19937& rng) {
  for (int t = 0; t < batch.tokens(); ++t) {
    const int b = sequenceOfRow(batch.cu.data(), batch.batch(), t);
    if (b < 0 || b >= batch.batch() || batch.cu[b] > t || t >= batch.cu[b + 1]) return errorAt("sequenceOfRow", b, t, 0);
  }
  for (int trial = 0; trial < 2000; ++trial) {
    const int B = 1 + static_cast<int>(rng() % 9), T = static_cast<int>(rng() % 300);
    std::vector<int32_t> cu(B + 1), qOffset(B), kvLens(B);
    for (auto& x : cu) x = static_cast<int32_t>(rng() % 400) - 50;
    for (int b = 0; b < B; ++b) {
      qOffset[b] = static_cast<int32_t>(rng() % 100) - 20;
      kvLens[b] = static_cast<int32_t>(rng() % 300) - 20;
    }
    for (int64_t v = 0; v < virtualBlocks(B, T, 64) + 3; ++v) {
      const BlockSlot slot = findBlock(cu.data(), B, 64, v);
      if (slot.doc < 0 || slot.doc >= B) return "findBlock left [0, B) on bad metadata";
      const Sequence s = sequenceOf(cu.data(), qOffset.data(), kvLens.data(), slot.doc, T, 200);
      if (s.ok && (s.start < 0 || s.start + s.len > T || s.keys > 200 || s.keys < 0 || s.offset < 0)) {
        return "bad metadata accepted";
      }
    }
    const int t = static_cast<int>(rng() % 300);
    const int b = sequenceOfRow(cu.data(), B, t);
    if (b < 0 || b >= B) return "sequenceOfRow left [0, B) on bad metadata";
  }
  return "";
}

}  // namespace

void checkTiles() {
  const std::vector<Batch> packedBatches = {
      packed("1 token", {1}),
      packed("17", {17}),
      packed("65", {65}),
      packed("129", {129}),
      packed("4097", {4097}),
      packed("empty, 1, 17, empty, 65, 1, 129, 64, 128, empty", {0, 1, 17, 0, 65, 1, 129, 64, 128, 0}),
  };
  Batch cache{"cache: decode at 4096, chunk of 17 at 100, queries past kvLens, empty, kvLens 0, full", {}, {}, {}, 4200};
  cache.cu = {0, 1, 18, 23, 23, 26, 26 + 130};
  cache.qOffset = {4096, 100, 0, 7, 10, 4000};
  cache.kvLens = {4097, 117, 3, 7, 0, 4130};
  std::mt19937 rng(7);
  for (bool causal : {true, false}) {
    const std::string mask = causal ? "causal" : "non-causal";
    for (const Batch& b : packedBatches) {
      const bool big = b.tokens() > 1000;
      if (big && !gFault.empty()) continue;  // a fault shows on the short documents already
      for (const auto& [bm, bn] : {std::pair{128, 64}, {128, 32}, {64, 64}}) {
        report("forward/dq tiles " + std::to_string(bm) + "x" + std::to_string(bn) + ", " + mask + ", " + b.name,
               forwardCoverage(b, causal, bm, bn));
      }
      for (const auto& [heads, kvHeads] : {std::pair{2, 2}, {8, 2}, {8, 1}}) {
        if (big && heads != kvHeads) continue;  // the long document once, its GQA variants on the rest
        for (int bm : {64, 32}) {
          report("backward tiles 64 keys x " + std::to_string(bm) + ", H " + std::to_string(heads) + " / Hkv " +
                     std::to_string(kvHeads) + ", " + mask + ", " + b.name,
                 backwardCoverage(b, causal, heads, kvHeads, bm, 64));
        }
      }
      for (int splits : {1, 3, 64}) {
        report("decode splits " + std::to_string(splits) + ", group 4, " + mask + ", " + b.name,
               decodeCoverage(b, causal, 4, splits));
      }
      report("sequence search, " + b.name, searchChecks(b, rng));
    }
    for (const auto& [bm, bn] : {std::pair{128, 64}, {128, 32}}) {
      report("forward tiles " + std::to_string(bm) + "x" + std::to_string(bn) + ", " + mask + ", " + cache.name,
             forwardCoverage(cache, causal, bm, bn));
    }
    for (int group : {1, 8}) {
      for (int splits : {1, 7, 64}) {
        report("decode splits " + std::to_string(splits) + ", group " + std::to_string(group) + ", " + mask + ", " +
                   cache.name,
               decodeCoverage(cache, causal, group, splits));
      }
    }
  }
}
