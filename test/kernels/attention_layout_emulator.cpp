// A CPU emulator for the attention kernels' bodies (kernels/flash_attention_*.cuh), so that the
// kernels themselves, not just their index math, run in the host test without a GPU. Each CUDA
// thread is a fiber (makecontext, then _setjmp/_longjmp); a CTA's fibers run round-robin until
// each reaches a barrier. __syncthreads waits for the CTA, the warp collectives (ldmatrix, mma,
// shuffles, __syncwarp) for all 32 lanes, so a missing or mismatched barrier shows up as a
// deadlock. The PTX primitives follow the PTX ISA: ldmatrix's row addresses and fragment layout,
// mma.m16n8k16's fragment tables (f32 accumulation of exact products), cp.async groups completed
// either at issue or as late as cp.async.wait_group allows (a missing wait then reads stale
// data). Shared-memory accesses through the primitives are bounds- and alignment-checked;
// global buffers carry NaN guard zones checked after each launch.
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

// ---- the CUDA surface the kernel bodies use ----------------------------------------------------------

#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct int4 {
  int x, y, z, w;
};
struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};
struct float2 {
  float x, y;
};
struct float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
float2 atomicAdd(float2* address, float2 value) {
  const float2 old = *address;
  *address = {old.x + value.x, old.y + value.y};
  return old;
}
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline int min(int a, int b) { return a < b ? a : b; }
struct __nv_bfloat16 {
  uint16_t bits;
};
struct __half {
  uint16_t bits;
};

volatile dim3 threadIdx;  // volatile: it changes whenever another fiber runs
dim3 blockIdx, gridDim, blockDim;
void __syncthreads();
void __syncwarp();
float __shfl_xor_sync(unsigned mask, float value, int laneMask);
float atomicAdd(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}
namespace seqtune::gpu {
void flagBadIndex(int* flag, int64_t p, int64_t count) { *flag = std::max<int>(*flag, static_cast<int>(count - p)); }
}  // namespace seqtune::gpu
int atomicExch(int* address, int value) {
  const int old = *address;
  *address = value;
  return old;
}
[[noreturn]] void __trap();
// The emulator's tensor map: what cuTensorMapEncodeTiled would encode (rank 3, 16-bit elements,
// 128-byte swizzle, zero fill).
struct CUtensorMap {
  const uint16_t* base;
  uint64_t dims[3], strides[2];  // strides in bytes
  uint32_t box[3];
};

#include "kernels/attention/attention_simt.cuh"
#include "kernels/attention/flash_attention_bwd_dq.cuh"
#include "kernels/attention/attention_decode.cuh"
#include "kernels/attention/flash_attention_fwd.cuh"
#include "kernels/hopper/flash_attention_hopper_bwd.cuh"
#include "kernels/hopper/flash_attention_hopper_fwd.cuh"
#include "kernels/hopper/gemm_hopper.cuh"
#include "test/kernels/attention_emulated.h"

extern std::string gFault;

// ---- fibers and CTAs ---------------------------------------------------------------------------------

namespace {

struct Copy {
  uint32_t dst;
  const uint8_t* src;
  int bytes;     // cp-size
  int srcBytes;  // read from src; the rest of the bytes is zero-filled
};

struct Fiber {
  unsigned tid = 0;
  bool started = false, done = false;
  jmp_buf resumeAt;
  ucontext_t start;
  std::vector<char> stack;
  std::vector<Copy> uncommitted;
  std::vector<std::vector<Copy>> groups;
};

enum class Kind { None, Sync, Shuffle, Ldmatrix, LdmatrixTrans, MmaBf16, MmaF16 };

struct Warp {
  int arrived = 0;
  uint64_t generation = 0;
  Kind kind = Kind::None;
  uint32_t inU[32][6];
  float inF[32][4];
  uint32_t outU[32][4];
  float outF[32][4];
};

// The Hopper kernels' state (attention_layout_hopper_emu.h): mbarriers by shared address, named
// barriers by id, and per warpgroup the collective in progress and its wgmma groups.
struct MBarrier {
  bool initialised = false;
  uint32_t count = 0, pending = 0, phase = 0;
  int64_t tx = 0;  // transaction bytes announced and not yet delivered
};

struct NamedBarrier {
  int arrived = 0, threads = 0;
  uint64_t generation = 0;
};

struct WgmmaOp;  // attention_layout_hopper_emu.h

struct Warpgroup {
  int arrived = 0;
  uint64_t generation = 0;
  int kind = 0;
  std::vector<WgmmaOp*> open;                 // issued since the last commit
  std::vector<std::vector<WgmmaOp*>> groups;  // committed, oldest first
};

struct Cta {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<uint8_t> smem;
  int live = 0, arrived = 0;
  uint64_t generation = 0, progress = 0;
  std::string error;
  bool lazyCopies = false;
  std::deque<std::pair<uint32_t, MBarrier>> mbarriers;  // deques: waiting threads hold references
  std::deque<std::pair<int, NamedBarrier>> named;
  std::vector<Warpgroup> warpgroups;
};

Cta* gCta = nullptr;
Fiber* gFiber = nullptr;
jmp_buf gScheduler;
std::function<void()> gBody;

void fail(const std::string& why) {
  if (gCta->error.empty()) gCta->error = why;
}

__attribute__((noinline)) void yield() {
  if (!_setjmp(gFiber->resumeAt)) _longjmp(gScheduler, 1);
}

void perform(const Copy& c) {
  if (c.dst + c.bytes > gCta->smem.size() || c.dst % c.bytes != 0) return fail("cp.async outside or misaligned in smem");
  if (c.srcBytes < 0 || c.srcBytes > c.bytes) return fail("cp.async src-size outside [0, cp-size]");
  if (c.srcBytes > 0) std::memcpy(gCta->smem.data() + c.dst, c.src, c.srcBytes);
  std::memset(gCta->smem.data() + c.dst + c.srcBytes, 0, c.bytes - c.srcBytes);
}

void fiberMain() {
  gBody();
  if (!gFiber->uncommitted.empty() || !gFiber->groups.empty()) fail("thread exits with cp.async copies in flight");
  gFiber->done = true;
  gCta->live--;
  gCta->progress++;
  // The threads still waiting at a barrier may now all be there.
  if (gCta->live > 0 && gCta->arrived == gCta->live) {
    gCta->arrived = 0;
    gCta->generation++;
  }
  _longjmp(gScheduler, 1);
}

// Runs fiber f until it waits or exits. A function of its own, so that no caller's locals live
// across the _setjmp.
__attribute__((noinline)) void resume(Fiber& f) {
  gFiber = &f;
  threadIdx.x = f.tid;
  if (!_setjmp(gScheduler)) {
    if (f.started) _longjmp(f.resumeAt, 1);
    f.started = true;
    setcontext(&f.start);
  }
}

// Thread t starts at fiberMain on its own stack. (getcontext returns twice in principle: kept out
// of launch's frame like the _setjmp.)
__attribute__((noinline)) void prepare(Fiber& f, unsigned t, std::vector<char>& stack) {
  f.tid = t;
  getcontext(&f.start);
  f.start.uc_stack.ss_sp = stack.data();
  f.start.uc_stack.ss_size = stack.size();
  f.start.uc_link = nullptr;
  makecontext(&f.start, fiberMain, 0);
}

// Runs every CTA of the grid, one at a time; returns the first error. lag > 0: the last 128
// threads (a warpgroup) get a turn only every lag-th round, so a thread that refills a stage
// without waiting for that warpgroup's release overwrites what it has yet to read.
std::string launch(dim3 grid, unsigned threads, size_t smemBytes, bool reverse, bool lazyCopies,
                   const std::function<void(uint8_t*)>& body, int lag = 0) {
  static std::vector<std::vector<char>> stacks;
  stacks.resize(std::max<size_t>(stacks.size(), threads), std::vector<char>(256 * 1024));
  gridDim = grid;
  blockDim = {threads, 1, 1};
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        Cta cta;
        cta.fibers.resize(threads);
        cta.warps.resize(threads / 32);
        cta.warpgroups.resize((threads + 127) / 128);
        // Poisoned shared memory: data read before anything wrote it shows up as NaN.
        cta.smem.assign(smemBytes, 0xff);
        cta.live = static_cast<int>(threads);
        cta.lazyCopies = lazyCopies;
        gCta = &cta;
        blockIdx = {x, y, z};
        gBody = [&] { body(cta.smem.data()); };
        for (unsigned t = 0; t < threads; ++t) prepare(cta.fibers[t], t, stacks[t]);
        int finished = 0, idle = 0;
        for (int round = 0; finished < static_cast<int>(threads) && cta.error.empty(); ++round) {
          const uint64_t before = cta.progress;
          for (unsigned i = 0; i < threads; ++i) {
            Fiber& f = cta.fibers[reverse ? threads - 1 - i : i];
            if (f.done || (lag > 0 && f.tid + 128 >= threads && round % lag != 0)) continue;
            resume(f);
            if (f.done) finished++;
            if (!cta.error.empty()) break;
          }
          idle = cta.progress == before ? idle + 1 : 0;
          if (idle >= std::max(lag, 1) && finished < static_cast<int>(threads)) fail("deadlock: threads wait at different barriers");
        }
        if (!cta.error.empty()) {
          return cta.error + " (block " + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) + ")";
        }
      }
    }
  }
  return "";
}

// The calling lane's warp collective of `kind`: inputs are in the warp's in* rows; the last lane
// to arrive runs `finish` for all 32, then everyone continues.
void collective(Kind kind, const std::function<void(Warp&)>& finish) {
  Warp& w = gCta->warps[gFiber->tid / 32];
  if (w.arrived == 0) w.kind = kind;
  if (w.kind != kind) fail("lanes of a warp reach different collectives");
  const uint64_t generation = w.generation;
  if (++w.arrived == 32) {
    finish(w);
    w.arrived = 0;
    w.generation++;
    gCta->progress++;
    return;
  }
  while (w.generation == generation && gCta->error.empty()) yield();
}

unsigned lane() { return gFiber->tid % 32; }

// PTX ISA fragment tables of mma.m16n8k16 (groupID = lane / 4, threadID_in_group = lane % 4).
int aRow(int l, int i) { return (i < 2 || (i >= 4 && i < 6)) ? l / 4 : l / 4 + 8; }
int aCol(int l, int i) { return (l % 4) * 2 + (i & 1) + (i >= 4 ? 8 : 0); }
int bRow(int l, int i) { return (l % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0); }
int cRow(int l, int i) { return l / 4 + (i >= 2 ? 8 : 0); }
int cCol(int l, int i) { return (l % 4) * 2 + (i & 1); }

float bf16Value(uint16_t bits) { return seqtune::bf16ToFloat(bits); }
float f16Value(uint16_t bits) { return seqtune::f16ToFloat(bits); }

}  // namespace

// The barriers and warp primitives are compiler memory barriers, as in CUDA: opaque calls with
// a memory clobber, whichever path the calling thread takes through them.
#define EMU_BARRIER __attribute__((noinline))
#define EMU_FENCE asm volatile("" ::: "memory")

EMU_BARRIER void __syncthreads() {
  EMU_FENCE;
  const uint64_t generation = gCta->generation;
  if (++gCta->arrived == gCta->live) {
    gCta->arrived = 0;
    gCta->generation++;
    gCta->progress++;
    return;
  }
  while (gCta->generation == generation && gCta->error.empty()) yield();
  EMU_FENCE;
}

EMU_BARRIER void __syncwarp() {
  EMU_FENCE;
  collective(Kind::Sync, [](Warp&) {});
}

EMU_BARRIER float __shfl_xor_sync(unsigned mask, float value, int laneMask) {
  EMU_FENCE;
  if (mask != 0xffffffffu) fail("shuffle with a partial mask");
  Warp& w = gCta->warps[gFiber->tid / 32];
  const unsigned l = lane();
  w.inF[l][0] = value;
  w.inU[l][0] = static_cast<uint32_t>(laneMask);
  collective(Kind::Shuffle, [](Warp& w) {
    for (int i = 0; i < 32; ++i) {
      if (w.inU[i][0] != w.inU[0][0]) fail("shuffle lanes disagree on the lane mask");
      // Fault "simt": the last butterfly step reads the lane itself, so a warp sum misses half the lanes.
      const unsigned source = gFault == "simt" && w.inU[0][0] == 16 ? i : i ^ w.inU[0][0];
      w.outF[i][0] = w.inF[source][0];
    }
  });
  return w.outF[l][0];
}

// ---- the PTX primitives --------------------------------------------------------------------------------

namespace seqtune::gpu::ptx {

uint32_t smemAddress(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  if (b < gCta->smem.data() || b > gCta->smem.data() + gCta->smem.size()) fail("smemAddress of a non-shared pointer");
  return static_cast<uint32_t>(b - gCta->smem.data());
}

namespace {
EMU_BARRIER void cpAsync(uint32_t dst, const void* src, int bytes, int srcBytes) {
  EMU_FENCE;
  // src-size 0 reads nothing, so src is not kept (a stray read would hit no guard zone otherwise).
  Copy c{dst, srcBytes > 0 ? static_cast<const uint8_t*>(src) : nullptr, bytes, srcBytes};
  if (gCta->lazyCopies) {
    gFiber->uncommitted.push_back(c);
  } else {
    perform(c);
  }
}
}  // namespace

void cpAsync16(uint32_t dst, const void* src, int srcBytes) { cpAsync(dst, src, 16, srcBytes); }
void cpAsync4(uint32_t dst, const void* src, int srcBytes) { cpAsync(dst, src, 4, srcBytes); }

EMU_BARRIER void cpAsyncCommit() {
  EMU_FENCE;
  if (gCta->lazyCopies) gFiber->groups.push_back(std::move(gFiber->uncommitted));
  gFiber->uncommitted.clear();
}

template <int N>
EMU_BARRIER void cpAsyncWait() {
  EMU_FENCE;
  auto& groups = gFiber->groups;
  while (groups.size() > static_cast<size_t>(N)) {
    for (const Copy& c : groups.front()) perform(c);
    groups.erase(groups.begin());
  }
}

namespace {
EMU_BARRIER void ldmatrix(uint32_t (&r)[4], uint32_t address, bool trans) {
  EMU_FENCE;
  Warp& w = gCta->warps[gFiber->tid / 32];
  const unsigned l = lane();
  w.inU[l][0] = address;
  collective(trans ? Kind::LdmatrixTrans : Kind::Ldmatrix, [trans](Warp& w) {
    const uint8_t* s = gCta->smem.data();
    for (int i = 0; i < 32; ++i) {
      if (w.inU[i][0] % 16 != 0 || w.inU[i][0] + 16 > gCta->smem.size()) return fail("ldmatrix row outside or misaligned");
    }
    auto half = [&](int row, int element) {
      uint16_t v;
      std::memcpy(&v, s + w.inU[row][0] + 2 * element, 2);
      return static_cast<uint32_t>(v);
    };
    for (int i = 0; i < 32; ++i) {
      for (int j = 0; j < 4; ++j) {
        // Matrix j's row r is at the address lane 8j + r gave.
        const bool t = trans != (gFault == "emulator");
        w.outU[i][j] = t ? half(8 * j + 2 * (i % 4), i / 4) | half(8 * j + 2 * (i % 4) + 1, i / 4) << 16
                             : half(8 * j + i / 4, 2 * (i % 4)) | half(8 * j + i / 4, 2 * (i % 4) + 1) << 16;
      }
    }
  });
  for (int j = 0; j < 4; ++j) r[j] = w.outU[l][j];
}
}  // namespace

template <bool kTrans>
void ldmatrixX4(uint32_t (&r)[4], uint32_t address) {
  ldmatrix(r, address, kTrans);
}

template <typename T>
EMU_BARRIER void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  Warp& w = gCta->warps[gFiber->tid / 32];
  const unsigned l = lane();
  for (int i = 0; i < 4; ++i) {
    w.inU[l][i] = a[i];
    w.inF[l][i] = d[i];
  }
  w.inU[l][4] = b0;
  w.inU[l][5] = b1;
  collective(kBf16 ? Kind::MmaBf16 : Kind::MmaF16, [](Warp& w) {
    auto value = [](uint32_t reg, int h) {
      const auto bits = static_cast<uint16_t>(reg >> (16 * h));
      return kBf16 ? bf16Value(bits) : f16Value(bits);
    };
    double A[16][16], B[16][8];
    for (int i = 0; i < 32; ++i) {
      for (int e = 0; e < 8; ++e) A[aRow(i, e)][aCol(i, e)] = value(w.inU[i][e / 2], e % 2);
      for (int e = 0; e < 4; ++e) B[bRow(i, e)][i / 4] = value(w.inU[i][4 + e / 2], e % 2);
    }
    for (int i = 0; i < 32; ++i) {
      for (int e = 0; e < 4; ++e) {
        double acc = w.inF[i][e];
        for (int k = 0; k < 16; ++k) acc += A[cRow(i, e)][k] * B[k][cCol(i, e)];
        w.outF[i][e] = static_cast<float>(acc);
      }
    }
  });
  for (int i = 0; i < 4; ++i) d[i] = w.outF[l][i];
}

template <typename T>
uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return seqtune::floatToBf16(lo) | static_cast<uint32_t>(seqtune::floatToBf16(hi)) << 16;
  } else {
    return seqtune::floatToF16(lo) | static_cast<uint32_t>(seqtune::floatToF16(hi)) << 16;
  }
}

template <typename T>
float toFloat(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return std::is_same_v<T, __nv_bfloat16> ? bf16Value(x.bits) : f16Value(x.bits);
  }
}

template <typename T>
T fromFloat(float x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return T{std::is_same_v<T, __nv_bfloat16> ? seqtune::floatToBf16(x) : seqtune::floatToF16(x)};
  }
}

template <typename T>
float2 unpack2(uint32_t w) {
  const auto lo = static_cast<uint16_t>(w), hi = static_cast<uint16_t>(w >> 16);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return {bf16Value(lo), bf16Value(hi)};
  return {f16Value(lo), f16Value(hi)};
}

float exp2Fast(float x) { return std::exp2(x); }

}  // namespace seqtune::gpu::ptx

#include "test/kernels/attention_layout_hopper_emu.h"  // the Hopper primitives

// ---- emulated launches, mirroring the launchers in kernels/*.cu -------------------------------------------
// (test/kernels/attention_emulated.h declares these.)

namespace emu {

using seqtune::gpu::AttentionShape;
using namespace seqtune::gpu::attn;


// The emulator's tensor map of a packed [tokens, heads, D] tensor (hopper::tmaGeometry).
CUtensorMap tensorMap(const uint16_t* base, int64_t tokens, int64_t heads, int D, int rows) {
  const hopper::TmaGeometry g = hopper::tmaGeometry(tokens, heads, D, rows);
  return {base, {g.dims[0], g.dims[1], g.dims[2]}, {g.strides[0], g.strides[1]}, {g.box[0], g.box[1], g.box[2]}};
}

// A device buffer: the data between two guard zones of NaN bits, checked after each launch.
template <typename E>
struct Guarded {
  static constexpr size_t kGuard = 256;
  std::vector<E> all;
  E poison;
  Guarded(size_t n, E poisonValue) : all(n + 2 * kGuard, poisonValue), poison(poisonValue) {}
  Guarded(const std::vector<E>& data, E poisonValue) : Guarded(data.size(), poisonValue) {
    std::copy(data.begin(), data.end(), all.begin() + kGuard);
  }
  E* data() { return all.data() + kGuard; }
  std::vector<E> values() const { return {all.begin() + kGuard, all.end() - kGuard}; }
  bool intact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (std::memcmp(&all[i], &poison, sizeof(E)) || std::memcmp(&all[all.size() - 1 - i], &poison, sizeof(E))) {
        return false;
      }
    }
    return true;
  }
};

constexpr uint16_t kNan16 = 0x7fff;  // NaN as bf16 and as f16
// The Hopper attention kernels' second warpgroup runs one round in 3: thread 0, in the first,
// loads for both and must wait for the second's releases.
constexpr int kHopperLag = 3;
const float kNan32 = std::nanf("");

template <typename T, int D>
std::string forwardImpl(const AttentionShape& s, const std::vector<uint16_t>& q, const std::vector<uint16_t>& k,
                        const std::vector<uint16_t>& v, const std::vector<int32_t>& cu,
                        const std::vector<int32_t>& qOffset, const std::vector<int32_t>& kvLens, int splits,
                        std::vector<uint16_t>& out, std::vector<float>& lse, Options o) {
  Guarded<uint16_t> gq(q, kNan16), gk(k, kNan16), gv(v, kNan16), gout(s.tokens * s.heads * D, kNan16);
  Guarded<int32_t> gcu(cu, -1), gqo(qOffset, -1), gkl(kvLens, -1);
  Guarded<float> glse(s.heads * s.tokens, kNan32);
  const bool cache = s.maxTokens > 0;
  const float scaleLog2 = static_cast<float>(s.scale * 1.4426950408889634);
  auto* qT = reinterpret_cast<const T*>(gq.data());
  auto* kT = reinterpret_cast<const T*>(gk.data());
  auto* vT = reinterpret_cast<const T*>(gv.data());
  auto* outT = reinterpret_cast<T*>(gout.data());
  const int32_t* qo = cache ? gqo.data() : nullptr;
  const int32_t* kl = cache ? gkl.data() : nullptr;
  std::string error;
  bool intact = true;
  if (splits > 0) {
    Guarded<float> ws(splits * s.tokens * s.heads * (D + 2), kNan32);
    const DecodeParams<T> p{qT, kT, vT, gcu.data(), qo, kl, ws.data(), ws.data() + splits * s.tokens * s.heads * D,
                            s.tokens, s.maxTokens, int(s.batch), int(s.heads), int(s.kvHeads), splits, scaleLog2,
                            s.causal};
    const dim3 grid{unsigned(splits), unsigned(s.kvHeads), unsigned(s.batch)};
    const bool fewRows = (s.heads / s.kvHeads) * ((s.tokens + s.batch - 1) / s.batch) <= 8;
    if (fewRows) {
      error = launch(grid, kDecThreads, DecodeConfig<D, 8>::kSmemBytes, o.reverse, o.lazyCopies,
                     [&](uint8_t* smem) { decodeSplit<T, D, 8>(p, reinterpret_cast<T*>(smem)); });
    } else {
      error = launch(grid, kDecThreads, DecodeConfig<D, 16>::kSmemBytes, o.reverse, o.lazyCopies,
                     [&](uint8_t* smem) { decodeSplit<T, D, 16>(p, reinterpret_cast<T*>(smem)); });
    }
    if (error.empty()) {
      error = launch({2, 1, 1}, 256, 0, o.reverse, o.lazyCopies, [&](uint8_t*) {
        combineRows<T, D>(outT, glse.data(), p.partAcc, p.partMl, s.tokens, int(s.heads), splits);
      });
    }
    intact = ws.intact();
  } else if (o.hopper) {
    using C = hopper::FwdConfig<D>;
    const CUtensorMap mq = tensorMap(gq.data(), s.tokens, s.heads, D, hopper::kWarpgroupRows);
    const CUtensorMap mk = tensorMap(gk.data(), s.tokens, s.kvHeads, D, C::kTileRows);
    const CUtensorMap mv = tensorMap(gv.data(), s.tokens, s.kvHeads, D, C::kTileRows);
    int fault = 0;
    const hopper::Params<T> p{outT, glse.data(), gcu.data(), s.tokens, int(s.batch), int(s.heads), int(s.kvHeads),
                              scaleLog2, s.causal, &fault};
    const dim3 grid{unsigned(virtualBlocks(s.batch, s.tokens, hopper::kBlockRows)), unsigned(s.heads), 1};
    error = launch(
        grid, hopper::kThreads, C::kSmemBytes, o.reverse, o.lazyCopies,
        [&](uint8_t* smem) { hopper::forwardCta<T, D>(mq, mk, mv, p, smem); }, kHopperLag);
    if (fault != 0) error += " fault " + std::to_string(fault);
  } else {
    using C = FwdConfig<D>;
    const FwdParams<T> p{qT, kT, vT, outT, glse.data(), gcu.data(), qo, kl, s.tokens, s.maxTokens, int(s.batch),
                         int(s.heads), int(s.kvHeads), scaleLog2, s.causal};
    const dim3 grid{unsigned(virtualBlocks(s.batch, s.tokens, C::kBM)), unsigned(s.heads), 1};
    error = launch(grid, C::kThreads, C::kSmemBytes, o.reverse, o.lazyCopies,
                   [&](uint8_t* smem) { forwardTile<T, D>(p, reinterpret_cast<T*>(smem)); });
  }
  if (!(intact && gq.intact() && gk.intact() && gv.intact() && gout.intact() && glse.intact() && gcu.intact())) {
    error += " a write outside a tensor";
  }
  out = gout.values();
  lse = glse.values();
  return error;
}

template <typename T, int D>
std::string backwardImpl(const AttentionShape& s, const std::vector<uint16_t>& dout, const std::vector<uint16_t>& q,
                         const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                         const std::vector<uint16_t>& out, const std::vector<float>& lse,
                         const std::vector<int32_t>& cu, bool deterministic, std::vector<uint16_t>& dq,
                         std::vector<uint16_t>& dk, std::vector<uint16_t>& dv, Options o) {
  const int64_t rows = s.tokens * s.heads;
  Guarded<uint16_t> gdout(dout, kNan16), gq(q, kNan16), gk(k, kNan16), gv(v, kNan16), gout(out, kNan16);
  Guarded<uint16_t> gdq(rows * D, kNan16), gdk(k.size(), kNan16), gdv(v.size(), kNan16);
  Guarded<float> glse(lse, kNan32), di(rows, kNan32), lse2(rows, kNan32), acc(rows * D, 0.f);
  Guarded<int32_t> gcu(cu, -1);
  const BwdArgs args{gq.data(), gk.data(), gv.data(), gdout.data(), gdq.data(), gdk.data(), gdv.data(),
                     lse2.data(), di.data(), deterministic ? nullptr : acc.data(), gcu.data()};
  const BwdParams<T> p = bwdParams<T>(s, args, static_cast<float>(s.scale * 1.4426950408889634));
  std::string error = launch({3, 1, 1}, 256, 0, o.reverse, o.lazyCopies, [&](uint8_t*) {
    preprocessRows<T, D>(di.data(), lse2.data(), p.dout, reinterpret_cast<const T*>(gout.data()), glse.data(),
                         s.tokens, int(s.heads));
  });
  using B = BwdConfig<D>;
  const dim3 keyGrid{unsigned(virtualBlocks(s.batch, s.tokens, B::kBN)), unsigned(s.kvHeads), 1};
  if (error.empty() && o.hopper) {
    // The Hopper kernel (flash_attention_hopper_bwd.cu's launch): dK, dV and, in the fast mode, the
    // dQ sums; dQ below.
    using H = hopper::BwdConfig<D>;
    const CUtensorMap mq = tensorMap(gq.data(), s.tokens, s.heads, D, H::kTileRows);
    const CUtensorMap mdo = tensorMap(gdout.data(), s.tokens, s.heads, D, H::kTileRows);
    const CUtensorMap mk = tensorMap(gk.data(), s.tokens, s.kvHeads, D, hopper::kWarpgroupRows);
    const CUtensorMap mv = tensorMap(gv.data(), s.tokens, s.kvHeads, D, hopper::kWarpgroupRows);
    int fault = 0;
    const hopper::BwdParams<T> hp{p.dk, p.dv, args.dqAccum, lse2.data(), di.data(), gcu.data(), s.tokens, int(s.batch),
                                  int(s.heads), int(s.kvHeads), p.scaleLog2, p.scale, s.causal, &fault};
    const dim3 grid{unsigned(virtualBlocks(s.batch, s.tokens, hopper::kBlockRows)), unsigned(s.kvHeads), 1};
    error = launch(
        grid, hopper::kThreads, H::kSmemBytes, o.reverse, o.lazyCopies,
        [&](uint8_t* smem) {
          if (deterministic) {
            hopper::backwardCta<T, D, false>(mq, mk, mv, mdo, hp, smem);
          } else {
            hopper::backwardCta<T, D, true>(mq, mk, mv, mdo, hp, smem);
          }
        },
        kHopperLag);
    if (fault != 0) error += " fault " + std::to_string(fault);
  } else if (error.empty()) {
    error = launch(keyGrid, B::kThreads, B::kSmemBytes, o.reverse, o.lazyCopies, [&](uint8_t* smem) {
      if (deterministic) {
        keyBlockTile<T, D, false>(p, reinterpret_cast<T*>(smem));
      } else {
        keyBlockTile<T, D, true>(p, reinterpret_cast<T*>(smem));
      }
    });
  }
  if (error.empty() && deterministic) {
    using Q = DqConfig<D>;
    const dim3 grid{unsigned(virtualBlocks(s.batch, s.tokens, Q::kBM)), unsigned(s.heads), 1};
    error = launch(grid, Q::kThreads, Q::kSmemBytes, o.reverse, o.lazyCopies,
                   [&](uint8_t* smem) { queryBlockTile<T, D>(p, reinterpret_cast<T*>(smem)); });
  } else if (error.empty()) {
    error = launch({2, 1, 1}, 256, 0, o.reverse, o.lazyCopies,
                   [&](uint8_t*) { convertDq<T>(p.dq, acc.data(), rows * D, p.scale); });
  }
  if (!(gdq.intact() && gdk.intact() && gdv.intact() && di.intact() && lse2.intact() && acc.intact())) {
    error += " a write outside a tensor";
  }
  dq = gdq.values();
  dk = gdk.values();
  dv = gdv.values();
  return error;
}

std::string forward(const AttentionShape& s, bool bf16, const std::vector<uint16_t>& q, const std::vector<uint16_t>& k,
                    const std::vector<uint16_t>& v, const std::vector<int32_t>& cu, const std::vector<int32_t>& qOffset,
                    const std::vector<int32_t>& kvLens, int splits, std::vector<uint16_t>& out, std::vector<float>& lse,
                    Options o) {
  if (bf16 && s.headDim == 64) return forwardImpl<__nv_bfloat16, 64>(s, q, k, v, cu, qOffset, kvLens, splits, out, lse, o);
  if (bf16) return forwardImpl<__nv_bfloat16, 128>(s, q, k, v, cu, qOffset, kvLens, splits, out, lse, o);
  if (s.headDim == 64) return forwardImpl<__half, 64>(s, q, k, v, cu, qOffset, kvLens, splits, out, lse, o);
  return forwardImpl<__half, 128>(s, q, k, v, cu, qOffset, kvLens, splits, out, lse, o);
}

std::string backward(const AttentionShape& s, bool bf16, const std::vector<uint16_t>& dout,
                     const std::vector<uint16_t>& q, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                     const std::vector<uint16_t>& out, const std::vector<float>& lse, const std::vector<int32_t>& cu,
                     bool deterministic, std::vector<uint16_t>& dq, std::vector<uint16_t>& dk,
                     std::vector<uint16_t>& dv, Options o) {
  if (bf16 && s.headDim == 64) {
    return backwardImpl<__nv_bfloat16, 64>(s, dout, q, k, v, out, lse, cu, deterministic, dq, dk, dv, o);
  }
  if (bf16) return backwardImpl<__nv_bfloat16, 128>(s, dout, q, k, v, out, lse, cu, deterministic, dq, dk, dv, o);
  return backwardImpl<__half, 64>(s, dout, q, k, v, out, lse, cu, deterministic, dq, dk, dv, o);
}

// kvCacheWrite with 16-byte or 2-byte units (rowBytes a multiple of the unit).
std::string cacheWrite(std::vector<uint8_t>& cache, const std::vector<uint8_t>& values, int unitBytes, int64_t tokens,
                       int64_t kvHeads, int64_t rowBytes, int64_t batch, int64_t maxTokens,
                       const std::vector<int32_t>& cu, const std::vector<int32_t>& offsets, int& flag, Options o) {
  Guarded<uint8_t> gcache(cache, 0xee), gvalues(values, 0xee);
  Guarded<int32_t> gcu(cu, -1), goff(offsets, -1), gflag(1, -1);
  gflag.data()[0] = 0;
  auto run = [&](auto unit) {
    using U = decltype(unit);
    return launch({3, 1, 1}, 64, 0, o.reverse, o.lazyCopies, [&](uint8_t*) {
      cacheWriteUnits<U>(reinterpret_cast<U*>(gcache.data()), reinterpret_cast<const U*>(gvalues.data()), tokens,
                         int(kvHeads), rowBytes / int64_t(sizeof(U)), int(batch), maxTokens, gcu.data(), goff.data(),
                         gflag.data());
    });
  };
  std::string error = unitBytes == 16 ? run(int4{}) : run(int16_t{});
  if (!(gcache.intact() && gflag.intact())) error += " a write outside a tensor";
  cache = gcache.values();
  flag = gflag.data()[0];
  return error;
}

}  // namespace emu

#include "test/kernels/attention_layout_gemm_emu.h"  // the Hopper GEMM under the same primitives
#include "test/kernels/attention_layout_simt_emu.h"  // the SIMT attention kernels
