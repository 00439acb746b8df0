// The Hopper primitives for the attention emulator (attention_layout_emulator.cpp includes this
// after its fibers, warp collectives and the sm_80 primitives), so that the Hopper kernels' bodies
// (kernels/flash_attention_hopper_{fwd,bwd}.cuh) run on the CPU as written. Semantics as the PTX
// ISA states them, checked where a kernel could get them wrong:
// - mbarriers: a phase completes when its arrivals and announced transaction bytes are all in;
//   try_wait.parity succeeds once the phase of that parity has completed; an arrival on a phase
//   with none pending, or more bytes delivered than announced, is an error;
// - TMA tensor loads: the box lands row-major at a 1024-byte aligned destination, 128B-swizzled
//   (hopper_models.h), zeros outside the tensor, its bytes completing on the mbarrier at once;
// - wgmma: a warpgroup collective (all 128 threads, same operands); the products run only at the
//   wait_group that retires them (with lazyCopies, after every other thread had one more turn),
//   reading shared memory then, so a stage released or refilled too early gives wrong results,
//   and accumulators or A registers changed while in flight are errors;
// - named barriers count threads per id; setmaxnreg and the fences (proxy fence included) are no-ops.
#pragma once

#include "test/kernels/hopper_models.h"

namespace {

struct WgmmaOp {
  bool rs = false, bf16 = false;
  int n = 0, transA = 0, transB = 0, scaleD = 0;
  uint64_t descA = 0, descB = 0;
  float* d[128] = {};
  std::vector<float> before[128];  // the accumulators at issue
  bool chained[128] = {};          // an earlier op still in flight writes the same accumulators
  const uint32_t* aPtr[128] = {};  // RS: the A registers, and their values at issue
  uint32_t a[128][4] = {};
};

enum WgKind { kWgNone, kWgFence, kWgMma, kWgCommit, kWgWait };

Warpgroup& warpgroup() { return gCta->warpgroups[gFiber->tid / 128]; }

// Once an error is recorded the CTA's threads are out of step: the calling thread goes no further
// (the scheduler stops the CTA at its next turn).
void haltOnError() {
  while (!gCta->error.empty()) yield();
}

// The calling thread's part of a warpgroup collective; the last of the 128 runs `finish`.
void wgCollective(int kind, const std::function<void(Warpgroup&)>& finish) {
  haltOnError();
  Warpgroup& w = warpgroup();
  if (w.arrived == 0) w.kind = kind;
  if (w.kind != kind) fail("threads of a warpgroup reach different wgmma instructions");
  const uint64_t generation = w.generation;
  if (++w.arrived == 128) {
    // Lazy schedule: the wgmmas a wait retires run only after every other thread had a turn (a
    // producer refilling a stage released too early then overwrites what they read).
    if (kind == kWgWait && gCta->lazyCopies) {
      gCta->progress++;
      yield();
    }
    finish(w);
    w.arrived = 0;
    w.generation++;
    gCta->progress++;
    return;
  }
  while (w.generation == generation && gCta->error.empty()) yield();
  haltOnError();
}

MBarrier* findBarrier(uint32_t address) {
  for (auto& [a, b] : gCta->mbarriers) {
    if (a == address) return &b;
  }
  return nullptr;
}

MBarrier& barrierAt(uint32_t address) {
  MBarrier* b = findBarrier(address);
  if (!b || !b->initialised) {
    fail("mbarrier used before mbarrier.init");
    static MBarrier dummy;
    return dummy;
  }
  return *b;
}

void completeIfDone(MBarrier& b) {
  if (b.pending == 0 && b.tx == 0) {
    b.phase++;
    b.pending = b.count;
    gCta->progress++;
  }
}

float halfValue(uint16_t bits, bool bf16) { return bf16 ? bf16Value(bits) : f16Value(bits); }

// Element (mn, k) of a descriptor's operand, read from shared memory now.
float operandAt(uint64_t desc, bool mnMajor, int mn, int k, bool bf16) {
  const hopper_models::Desc d = hopper_models::decode(desc);
  if (d.mode != 1 || d.baseOffset != 0) fail("wgmma descriptor not in 128B-swizzle mode with base offset 0");
  const uint32_t address = hopper_models::wgmmaAddress(d, mnMajor, mn, k);
  if (address + 2 > gCta->smem.size()) {
    fail("wgmma reads outside shared memory");
    return 0;
  }
  uint16_t bits;
  std::memcpy(&bits, gCta->smem.data() + address, 2);
  return halfValue(bits, bf16);
}

// Runs one issued wgmma (ops run in issue order).
void execute(const WgmmaOp& op) {
  double A[64][16], B[256][16];
  for (int m = 0; m < 64 && !op.rs; ++m) {
    for (int k = 0; k < 16; ++k) A[m][k] = operandAt(op.descA, op.transA, m, k, op.bf16);
  }
  if (op.rs) {
    for (int t = 0; t < 128; ++t) {
      if (std::memcmp(op.aPtr[t], op.a[t], sizeof op.a[t]) != 0) fail("A registers changed while their wgmma was in flight");
      for (int e = 0; e < 8; ++e) {
        const auto bits = static_cast<uint16_t>(op.a[t][e / 2] >> (16 * (e % 2)));
        A[16 * (t / 32) + aRow(t % 32, e)][aCol(t % 32, e)] = halfValue(bits, op.bf16);
      }
    }
  }
  // The "hopper" fault reads B with the wrong major-ness: every Hopper kernel must then fail.
  const bool transB = (op.transB != 0) != (gFault == "hopper");
  for (int n = 0; n < op.n; ++n) {
    for (int k = 0; k < 16; ++k) B[n][k] = operandAt(op.descB, transB, n, k, op.bf16);
  }
  for (int t = 0; t < 128; ++t) {
    float* d = op.d[t];
    if (!op.chained[t] && std::memcmp(d, op.before[t].data(), op.before[t].size() * sizeof(float)) != 0) {
      fail("accumulators changed while their wgmma was in flight");
    }
    for (int j = 0; j < op.n / 8; ++j) {
      for (int v = 0; v < 4; ++v) {
        const int m = 16 * (t / 32) + cRow(t % 32, v), n = 8 * j + cCol(t % 32, v);
        double acc = op.scaleD ? d[4 * j + v] : 0.0;
        for (int k = 0; k < 16; ++k) acc += A[m][k] * B[n][k];
        d[4 * j + v] = static_cast<float>(acc);
      }
    }
  }
}

// Deposits the calling thread's operands into the warpgroup's op under construction.
void issue(bool rs, bool bf16, int n, int transA, int transB, uint64_t descA, uint64_t descB, int scaleD, float* d,
           const uint32_t* a) {
  haltOnError();
  Warpgroup& w = warpgroup();
  const int t = static_cast<int>(gFiber->tid % 128);
  if (w.arrived == 0) {
    w.open.push_back(new WgmmaOp);
    WgmmaOp& op = *w.open.back();
    op.rs = rs;
    op.bf16 = bf16;
    op.n = n;
    op.transA = transA;
    op.transB = transB;
    op.descA = descA;
    op.descB = descB;
    op.scaleD = scaleD;
  }
  WgmmaOp& op = *w.open.back();
  if (op.rs != rs || op.n != n || op.descA != descA || op.descB != descB || op.scaleD != scaleD || op.bf16 != bf16) {
    fail("threads of a warpgroup issue a wgmma with different operands");
  }
  // Chained accumulation (the k-steps of a product, or groups in flight back to back) is legal:
  // the hardware orders wgmmas on the same accumulators.
  auto writes = [&](const WgmmaOp* other) { return other != &op && other->d[t] == d; };
  for (const WgmmaOp* other : w.open) op.chained[t] = op.chained[t] || writes(other);
  for (const auto& group : w.groups) {
    for (const WgmmaOp* other : group) op.chained[t] = op.chained[t] || writes(other);
  }
  op.d[t] = d;
  op.before[t].assign(d, d + n / 2);
  if (rs) {
    op.aPtr[t] = a;
    std::memcpy(op.a[t], a, sizeof op.a[t]);
  }
  wgCollective(kWgMma, [](Warpgroup&) {});
}

}  // namespace

[[noreturn]] void __trap() {
  fail("__trap");
  for (;;) yield();
}

namespace seqtune::hopper::ptx {

EMU_BARRIER void mbarInit(uint32_t bar, uint32_t count) {
  EMU_FENCE;
  if (bar % 8 != 0 || bar + 8 > gCta->smem.size()) return fail("mbarrier outside shared memory or misaligned");
  MBarrier* b = findBarrier(bar);
  if (!b) {
    gCta->mbarriers.push_back({bar, MBarrier{}});
    b = &gCta->mbarriers.back().second;
  }
  *b = MBarrier{true, count, count, 0, 0};
}

void fenceBarrierInit() {}

EMU_BARRIER void mbarArriveExpectTx(uint32_t bar, uint32_t bytes) {
  EMU_FENCE;
  MBarrier& b = barrierAt(bar);
  b.tx += bytes;
  mbarArrive(bar);
}

EMU_BARRIER void mbarArrive(uint32_t bar) {
  EMU_FENCE;
  MBarrier& b = barrierAt(bar);
  if (b.pending == 0) return fail("mbarrier arrival on a phase with none pending");
  b.pending--;
  completeIfDone(b);
}

EMU_BARRIER bool mbarTryWait(uint32_t bar, uint32_t parity) {
  EMU_FENCE;
  if ((barrierAt(bar).phase & 1u) != parity) return true;
  yield();
  return false;
}

// Never advances: a wait that is never satisfied shows as the emulator's deadlock, not a timeout.
uint64_t globalTimer() { return 0; }

EMU_BARRIER void tmaLoad3d(uint32_t dst, const void* tensorMap, uint32_t bar, int32_t c0, int32_t c1, int32_t c2) {
  EMU_FENCE;
  const auto& map = *static_cast<const CUtensorMap*>(tensorMap);
  const uint32_t bytes = map.box[0] * map.box[1] * map.box[2] * 2;
  if (dst % 1024 != 0 || dst + bytes > gCta->smem.size()) return fail("TMA box outside shared memory or not 1024-byte aligned");
  if (map.box[0] * 2 > 128) return fail("a 128B-swizzled box wider than 128 bytes");
  uint32_t i = 0;
  for (uint32_t i2 = 0; i2 < map.box[2]; ++i2) {
    for (uint32_t i1 = 0; i1 < map.box[1]; ++i1) {
      for (uint32_t i0 = 0; i0 < map.box[0]; ++i0, ++i) {
        const int64_t x0 = int64_t(c0) + i0, x1 = int64_t(c1) + i1, x2 = int64_t(c2) + i2;
        uint16_t v = 0;
        if (x0 >= 0 && x1 >= 0 && x2 >= 0 && uint64_t(x0) < map.dims[0] && uint64_t(x1) < map.dims[1] &&
            uint64_t(x2) < map.dims[2]) {
          v = map.base[x0 + x1 * int64_t(map.strides[0] / 2) + x2 * int64_t(map.strides[1] / 2)];
        }
        std::memcpy(gCta->smem.data() + hopper_models::cuteSwizzle343(dst + 2 * i), &v, 2);
      }
    }
  }
  MBarrier& b = barrierAt(bar);
  b.tx -= bytes;
  if (b.tx < 0) return fail("TMA delivered more bytes than the mbarrier's phase announced");
  completeIfDone(b);
}

EMU_BARRIER void wgmmaFence() {
  EMU_FENCE;
  wgCollective(kWgFence, [](Warpgroup&) {});
}

EMU_BARRIER void wgmmaCommit() {
  EMU_FENCE;
  wgCollective(kWgCommit, [](Warpgroup& w) {
    w.groups.push_back(std::move(w.open));
    w.open.clear();
  });
}

template <int N>
EMU_BARRIER void wgmmaWait() {
  EMU_FENCE;
  wgCollective(kWgWait, [](Warpgroup& w) {
    while (w.groups.size() > static_cast<size_t>(N)) {
      for (WgmmaOp* op : w.groups.front()) {
        execute(*op);
        delete op;
      }
      w.groups.erase(w.groups.begin());
    }
  });
}

template <typename T, int TA_, int TB_, int N>
EMU_BARRIER void wgmmaSS(float (&d)[N / 8][4], uint64_t descA, uint64_t descB, int scaleD) {
  EMU_FENCE;
  issue(false, std::is_same_v<T, __nv_bfloat16>, N, TA_, TB_, descA, descB, scaleD, &d[0][0], nullptr);
}

template <typename T, int TB_, int N>
EMU_BARRIER void wgmmaRS(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t descB, int scaleD) {
  EMU_FENCE;
  issue(true, std::is_same_v<T, __nv_bfloat16>, N, 0, TB_, 0, descB, scaleD, &d[0][0], a);
}

EMU_BARRIER void namedBarrierSync(int id, int threads) {
  EMU_FENCE;
  NamedBarrier* b = nullptr;
  for (auto& [i, nb] : gCta->named) {
    if (i == id) b = &nb;
  }
  if (!b) {
    gCta->named.push_back({id, NamedBarrier{}});
    b = &gCta->named.back().second;
  }
  if (b->arrived == 0) b->threads = threads;
  if (b->threads != threads) return fail("named barrier used with different thread counts");
  const uint64_t generation = b->generation;
  if (++b->arrived == threads) {
    b->arrived = 0;
    b->generation++;
    gCta->progress++;
    return;
  }
  while (b->generation == generation && gCta->error.empty()) yield();
  EMU_FENCE;
}

// A fence for the emulator's single proxy: shared memory is read at wait_group, after the
// barriers that order the writes (a missing barrier still shows).
void fenceProxyAsync() {}

}  // namespace seqtune::hopper::ptx
