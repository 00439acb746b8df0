// Launchers of the SIMT attention kernels (attention_simt.cuh): dtype and head-dim dispatch onto
// the register chunks per lane, one CTA per kWarps rows of one head (kv head in the key pass).
#include "kernels/attention/attention_simt.cuh"
#include "kernels/attention/attention_simt.h"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace {

using attn::simt::kCtaThreads;
using attn::simt::kWarps;
using attn::simt::Params;

template <typename T, int kChunks>
__global__ void __launch_bounds__(kCtaThreads) forwardKernel(const Params<T> p) {
  attn::simt::forwardRow<T, kChunks>(p);
}

template <typename T, int kChunks>
__global__ void __launch_bounds__(kCtaThreads) queryPassKernel(const Params<T> p) {
  attn::simt::backwardQueryRow<T, kChunks>(p);
}

template <typename T, int kChunks>
__global__ void __launch_bounds__(kCtaThreads) keyPassKernel(const Params<T> p) {
  attn::simt::backwardKeyRow<T, kChunks>(p);
}

// f(TypeTag<T>, chunks) for f32/bf16/f16 and D <= 256 (chunks: 32-element slices per lane).
template <typename F>
void dispatch(DType dtype, int64_t headDim, const char* what, F&& f) {
  if (dtype == DType::F64) {
    fail(code::kNotImplemented, what, ": f64 is not implemented on cuda: its lse is f32 there; run f64 gradient checks on the cpu");
  }
  if (headDim > kAttentionMaxHeadDim) {
    fail(code::kNotImplemented, what, ": the CUDA attention kernels support head dims up to ",
         kAttentionMaxHeadDim, ", got ", headDim);
  }
  dispatchFloat(dtype, what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, double>) {
      if (headDim <= 32) return f(TypeTag<T>{}, std::integral_constant<int, 1>{});
      if (headDim <= 64) return f(TypeTag<T>{}, std::integral_constant<int, 2>{});
      if (headDim <= 128) return f(TypeTag<T>{}, std::integral_constant<int, 4>{});
      return f(TypeTag<T>{}, std::integral_constant<int, 8>{});
    }
  });
}

template <typename T>
Params<T> params(const AttentionShape& s, const void* q, const void* k, const void* v, const int32_t* cu) {
  Params<T> p{};
  p.q = static_cast<const T*>(q);
  p.k = static_cast<const T*>(k);
  p.v = static_cast<const T*>(v);
  p.cu = cu;
  p.tokens = s.tokens;
  p.maxTokens = s.maxTokens;
  p.batch = static_cast<int>(s.batch);
  p.heads = static_cast<int>(s.heads);
  p.kvHeads = static_cast<int>(s.kvHeads);
  p.headDim = static_cast<int>(s.headDim);
  p.scale = static_cast<float>(s.scale);
  p.causal = s.causal;
  return p;
}

dim3 rowGrid(const AttentionShape& s, int64_t heads, const char* what) {
  const int64_t blocks = (s.tokens + kWarps - 1) / kWarps;
  if (blocks > INT32_MAX || heads > 65535) {
    fail(code::kNotImplemented, what, ": ", blocks, " blocks x ", heads, " heads exceed the CUDA grid");
  }
  return dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(heads));
}

}  // namespace

bool attentionOnTensorCores(DType dtype, int64_t headDim) {
  return (dtype == DType::BF16 || dtype == DType::F16) && (headDim == 64 || headDim == 128);
}

void attentionForwardSimt(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                          const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out,
                          float* lse, cudaStream_t stream) {
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  dispatch(dtype, shape.headDim, "attention", [&](auto tag, auto chunks) {
    using T = typename decltype(tag)::type;
    Params<T> p = params<T>(shape, q, k, v, cuSeqlens);
    p.qOffset = qOffset;
    p.kvLens = kvLens;
    p.out = static_cast<T*>(out);
    p.lse = lse;
    forwardKernel<T, decltype(chunks)::value><<<rowGrid(shape, shape.heads, "attention"), kCtaThreads, 0, stream>>>(p);
    checkLaunch("attention: SIMT forward kernel");
  });
}

void attentionBackwardSimt(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                           const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq,
                           void* dk, void* dv, void* workspace, cudaStream_t stream) {
  if (shape.maxTokens != 0) fail(code::kArgument, "attentionBackward: only the packed layout has a backward");
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  dispatch(dtype, shape.headDim, "attentionBackward", [&](auto tag, auto chunks) {
    using T = typename decltype(tag)::type;
    constexpr int kChunks = decltype(chunks)::value;
    Params<T> p = params<T>(shape, q, k, v, cuSeqlens);
    p.fwdOut = static_cast<const T*>(out);
    p.fwdLse = lse;
    p.dout = static_cast<const T*>(dout);
    p.dq = static_cast<T*>(dq);
    p.dk = static_cast<T*>(dk);
    p.dv = static_cast<T*>(dv);
    p.di = static_cast<float*>(workspace);
    queryPassKernel<T, kChunks><<<rowGrid(shape, shape.heads, "attentionBackward"), kCtaThreads, 0, stream>>>(p);
    checkLaunch("attentionBackward: SIMT query pass");
    keyPassKernel<T, kChunks><<<rowGrid(shape, shape.kvHeads, "attentionBackward"), kCtaThreads, 0, stream>>>(p);
    checkLaunch("attentionBackward: SIMT key pass");
  });
}

}  // namespace seqtune::gpu
