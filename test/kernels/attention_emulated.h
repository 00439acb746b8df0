// The emulated launches (attention_layout_emulator.cpp and the *_emu.h files it includes), as the
// host checks call them: each returns "" or the first error (a deadlock, a bad shared-memory
// access, a write outside a tensor).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/attention/flash_attention.h"

namespace emu {

using seqtune::gpu::AttentionShape;

struct Options {
  bool reverse = false;     // run each CTA's threads in reverse order
  bool lazyCopies = false;  // complete cp.async copies at the last moment a wait allows
  bool hopper = false;      // the Hopper kernels (packed layout; the backward's deterministic mode)
};

// The tensor-core kernels on bf16 (bf16 = true) or f16 bits; splits > 0 takes the decoding path.
std::string forward(const AttentionShape& s, bool bf16, const std::vector<uint16_t>& q, const std::vector<uint16_t>& k,
                    const std::vector<uint16_t>& v, const std::vector<int32_t>& cu, const std::vector<int32_t>& qOffset,
                    const std::vector<int32_t>& kvLens, int splits, std::vector<uint16_t>& out, std::vector<float>& lse,
                    Options o);
std::string backward(const AttentionShape& s, bool bf16, const std::vector<uint16_t>& dout,
                     const std::vector<uint16_t>& q, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                     const std::vector<uint16_t>& out, const std::vector<float>& lse, const std::vector<int32_t>& cu,
                     bool deterministic, std::vector<uint16_t>& dq, std::vector<uint16_t>& dk,
                     std::vector<uint16_t>& dv, Options o);
int hopperGemmCases();
std::string describeGemm(int index);
std::string hopperGemm(int index, Options o);
std::string cacheWrite(std::vector<uint8_t>& cache, const std::vector<uint8_t>& values, int unitBytes, int64_t tokens,
                       int64_t kvHeads, int64_t rowBytes, int64_t batch, int64_t maxTokens,
                       const std::vector<int32_t>& cu, const std::vector<int32_t>& offsets, int& flag, Options o);

// The SIMT kernels (attention_simt.cuh) on dtype 0 f32, 1 bf16, 2 f16 storage, values as float.
std::string simtForward(const AttentionShape& s, int dtype, const std::vector<float>& q, const std::vector<float>& k,
                        const std::vector<float>& v, const std::vector<int32_t>& cu, const std::vector<int32_t>& qOffset,
                        const std::vector<int32_t>& kvLens, std::vector<float>& out, std::vector<float>& lse, Options o);
std::string simtBackward(const AttentionShape& s, int dtype, const std::vector<float>& dout, const std::vector<float>& q,
                         const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& out,
                         const std::vector<float>& lse, const std::vector<int32_t>& cu, std::vector<float>& dq,
                         std::vector<float>& dk, std::vector<float>& dv, Options o);

}  // namespace emu
