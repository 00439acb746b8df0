// Ops attention, attentionBackward and kvCacheWrite (lib/ops.ts). The builders check shapes,
// dtypes and attributes here on the JS thread; the contents of cuSeqlens, qOffset, kvLens and
// offsets live on the device, so native/cpu/attention checks those before using them. On a CUDA
// device the plans launch kernels/attention/flash_attention.h, which routes to attention_decode.h and, for f32
// and head dims other than 64 and 128, to attention_simt.h; the kernels flag bad index tensors, and
// the op then fails with the CPU's message.
#include <cmath>
#include <vector>

#include "native/cpu/attention.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/attention/attention_decode.h"
#include "kernels/attention/attention_simt.h"
#include "native/runtime/cuda_device.h"
#include "kernels/attention/flash_attention.h"
#include "kernels/common/index_check.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

// cuSeqlens: int32 [B + 1]; returns B.
int64_t expectSeqlens(const OpCall& call, const Tensor& cu) {
  expectDtype(call, cu, "cuSeqlens", {DType::I32});
  expectRank(call, cu, "cuSeqlens", 1);
  if (cu.dim(0) < 1) failShape(call, str("cuSeqlens needs at least one entry (B + 1), got ", cu.describe()));
  return cu.dim(0) - 1;
}

// q [T, H, D] with k, v (rank already checked) of the same dtype and head dim, H a multiple of Hkv.
void expectHeads(const OpCall& call, const Tensor& q, const Tensor& k, const Tensor& v) {
  expectFloat(call, q, "q");
  expectSameDtype(call, q, "q", k, "k");
  expectSameDtype(call, q, "q", v, "v");
  expectRank(call, q, "q", 3);
  expectSameShape(call, k, "k", v, "v");
  if (q.dim(1) < 1 || q.dim(2) < 1) {
    failShape(call, str("q needs at least one head and a head dim >= 1, got ", q.describe()));
  }
  const int64_t kvHeads = k.dim(1);  // [T, Hkv, D] packed, [B, Hkv, maxTokens, D] cache
  if (kvHeads < 1 || q.dim(1) % kvHeads != 0) {
    failShape(call, str("q's heads (", q.dim(1), ") must be a multiple of k's kv heads (", kvHeads, ")"));
  }
  if (k.dim(-1) != q.dim(2)) {
    failShape(call, str("k (", k.describe(), ") and q (", q.describe(), ") must have the same head dim"));
  }
}

// scale attr: finite, default 1/sqrt(D).
double scaleAttr(const OpCall& call, int64_t headDim) {
  const double scale = call.attrs.has("scale") ? call.attrs.number("scale") : 1.0 / std::sqrt(static_cast<double>(headDim));
  if (!std::isfinite(scale)) fail(code::kArgument, call.op, ": scale must be finite, got ", scale);
  return scale;
}

#ifdef SEQTUNE_CUDA
// What CUDA attention runs: f32, bf16 and f16 with head dims up to 256 (the tensor-core kernels
// take bf16/f16 at 64 and 128, kernels/attention/attention_simt.h the rest). f64 stays on the CPU: its lse is
// f64 there, for exact float64 gradient checks.
void expectCudaAttention(const OpCall& call, const Tensor& q) {
  if (q.dtype() == DType::F64) {
    fail(code::kNotImplemented, call.op, ": f64 is not implemented on cuda (", call.device->name(), "), got ",
         q.describe(), "; run f64 gradient checks on the cpu device");
  }
  if (q.dim(2) > gpu::kAttentionMaxHeadDim) {
    fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") attention supports head dims up to ",
         gpu::kAttentionMaxHeadDim, ", got ",
         q.dim(2), " (q ", q.describe(), ")");
  }
}

gpu::AttentionShape attentionShape(const cpu::AttentionDims& d) {
  return {d.tokens, d.heads, d.kvHeads, d.headDim, d.batch, d.maxTokens, d.causal, d.scale};
}

// An int32 [n] device tensor on the host (device thread).
std::vector<int32_t> hostInts(const Tensor& t) {
  std::vector<int32_t> host(static_cast<size_t>(t.numel()));
  t.device()->copyToHost(host.data(), t.raw(), t.nbytes());
  return host;
}

// Device thread, before the attention kernels of the forward and the backward: they skip a
// sequence with bad cuSeqlens, qOffset or kvLens (null: packed layout) without a word, so the
// device check flags one and, when it did, the CPU backend's checks on host copies throw its
// ERR_INDEX message. Costs a stream synchronisation per call.
void checkIndices(const IndexCheck& check, cudaStream_t stream, const cpu::AttentionDims& d, const char* op,
                  const TensorPtr& cu, const TensorPtr& qOffset, const TensorPtr& kvLens) {
  const int32_t* qo = qOffset ? qOffset->data<int32_t>() : nullptr;
  const int32_t* kl = kvLens ? kvLens->data<int32_t>() : nullptr;
  gpu::attentionCheckIndices(attentionShape(d), cu->data<int32_t>(), qo, kl, check.flag(), stream);
  check.verify(stream, [&](const int32_t* cuHost) {
    std::vector<int32_t> qoHost, klHost;
    if (d.maxTokens > 0) {
      qoHost = hostInts(*qOffset);
      klHost = hostInts(*kvLens);
    }
    cpu::checkAttentionIndices(d, op, cuHost, qoHost.data(), klHost.data());
  });
}
#endif  // SEQTUNE_CUDA

// attention(q, k, v, cuSeqlens, qOffset?, kvLens?, {causal, scale}) -> out [T, H, D], lse f32 [H, T] (f64 for f64 q)
OpPlan buildAttention(const OpCall& call) {
  const TensorPtr& q = input(call, 0, "q");
  const TensorPtr& k = input(call, 1, "k");
  const TensorPtr& v = input(call, 2, "v");
  const TensorPtr& cu = input(call, 3, "cuSeqlens");
  TensorPtr qOffset = optionalInput(call, 4);
  TensorPtr kvLens = optionalInput(call, 5);
  const int64_t batch = expectSeqlens(call, *cu);
  if (!qOffset != !kvLens) fail(code::kArgument, call.op, ": the cache layout needs both qOffset and kvLens");
  const bool cache = qOffset != nullptr;
  expectRank(call, *k, "k", cache ? 4 : 3);
  expectHeads(call, *q, *k, *v);
  const int64_t T = q->dim(0), H = q->dim(1), D = q->dim(2);
  cpu::AttentionDims dims{T, H, k->dim(1), D, batch, 0, call.attrs.flag("causal"), scaleAttr(call, D)};
  if (cache) {
    if (k->dim(0) != batch) {
      failShape(call, str("the cache k (", k->describe(), ") must hold B = ", batch, " sequences"));
    }
    expectDtype(call, *qOffset, "qOffset", {DType::I32});
    expectDtype(call, *kvLens, "kvLens", {DType::I32});
    expectShape(call, *qOffset, "qOffset", {batch});
    expectShape(call, *kvLens, "kvLens", {batch});
    dims.maxTokens = k->dim(2);
    // maxTokens = 0 marks the packed layout in AttentionDims; a cache without slots is useless anyway.
    if (dims.maxTokens == 0) failShape(call, str("the cache k (", k->describe(), ") has no token slots"));
  } else if (k->dim(0) != T) {
    failShape(call, str("packed k (", k->describe(), ") must have T = ", T, " rows like q"));
  }
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    expectCudaAttention(call, *q);
    IndexCheck check(call, cu, "cuSeqlens");
    const gpu::AttentionShape shape = attentionShape(dims);
    // A function of the shape alone (no device query), so sized here on the JS thread.
    TensorPtr workspace = scratchBytes(call.device, gpu::attentionForwardWorkspaceBytes(shape));
    TensorPtr out = Tensor::empty(call.device, q->shape(), q->dtype());
    TensorPtr lse = Tensor::empty(call.device, {H, T}, DType::F32);
    cudaStream_t stream = streamOf(call.device);
    return {{out, lse}, {}, [=, op = call.op] {
              checkIndices(check, stream, dims, op, cu, qOffset, kvLens);
              const int32_t* qo = qOffset ? qOffset->data<int32_t>() : nullptr;
              const int32_t* kl = kvLens ? kvLens->data<int32_t>() : nullptr;
              gpu::attentionForward(shape, q->dtype(), q->raw(), k->raw(), v->raw(), cu->data<int32_t>(), qo, kl,
                                    out->raw(), lse->data<float>(), workspace->raw(), stream);
            }};
  }
#endif
  expectCpu(call);
  TensorPtr out = Tensor::empty(call.device, q->shape(), q->dtype());
  // lse in the compute type: f32, or f64 for f64 inputs so float64 gradient checks stay exact.
  TensorPtr lse = Tensor::empty(call.device, {H, T}, q->dtype() == DType::F64 ? DType::F64 : DType::F32);
  return {{out, lse}, {}, [q, k, v, cu, qOffset, kvLens, out, lse, dims, op = call.op] {
            withComputeType(q->dtype(), [&](auto zero) {
              using C = decltype(zero);
              HostIn<C> qh(*q), kh(*k), vh(*v);
              HostOut<C> o(*out, false);
              cpu::attentionForward<C>(dims, op, qh.data(), kh.data(), vh.data(), cu->data<int32_t>(),
                                       qOffset ? qOffset->data<int32_t>() : nullptr,
                                       kvLens ? kvLens->data<int32_t>() : nullptr, o.data(), lse->data<C>());
              o.commit();
            });
          }};
}

// attentionBackward(dout, q, k, v, out, lse, cuSeqlens, {causal, scale}) -> dq, dk, dv
OpPlan buildAttentionBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& q = input(call, 1, "q");
  const TensorPtr& k = input(call, 2, "k");
  const TensorPtr& v = input(call, 3, "v");
  const TensorPtr& out = input(call, 4, "out");
  const TensorPtr& lse = input(call, 5, "lse");
  const TensorPtr& cu = input(call, 6, "cuSeqlens");
  const int64_t batch = expectSeqlens(call, *cu);
  expectRank(call, *k, "k", 3);
  expectHeads(call, *q, *k, *v);
  expectLike(call, *q, "q", *dout, "dout");
  expectLike(call, *q, "q", *out, "out");
  const int64_t T = q->dim(0), H = q->dim(1), D = q->dim(2);
  if (k->dim(0) != T) failShape(call, str("packed k (", k->describe(), ") must have T = ", T, " rows like q"));
  expectDtype(call, *lse, "lse", {q->dtype() == DType::F64 ? DType::F64 : DType::F32});
  expectShape(call, *lse, "lse", {H, T});
  cpu::AttentionDims dims{T, H, k->dim(1), D, batch, 0, call.attrs.flag("causal"), scaleAttr(call, D)};
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    expectCudaAttention(call, *q);
    // Bit-identical dq between runs unless the caller opts out.
    const bool deterministic = call.attrs.flag("deterministic");
    IndexCheck check(call, cu, "cuSeqlens");
    const gpu::AttentionShape shape = attentionShape(dims);
    // A function of the shape alone (no device query), so sized here on the JS thread.
    TensorPtr workspace = scratchBytes(call.device, gpu::attentionBackwardWorkspaceBytes(shape, deterministic));
    TensorPtr dq = Tensor::empty(call.device, q->shape(), q->dtype());
    TensorPtr dk = Tensor::empty(call.device, k->shape(), k->dtype());
    TensorPtr dv = Tensor::empty(call.device, v->shape(), v->dtype());
    cudaStream_t stream = streamOf(call.device);
    return {{dq, dk, dv}, {}, [=, op = call.op] {
              checkIndices(check, stream, dims, op, cu, nullptr, nullptr);
              gpu::attentionBackward(shape, q->dtype(), dout->raw(), q->raw(), k->raw(), v->raw(), out->raw(),
                                     lse->data<float>(), cu->data<int32_t>(), dq->raw(), dk->raw(), dv->raw(),
                                     deterministic, workspace->raw(), stream);
            }};
  }
#endif
  expectCpu(call);
  TensorPtr dq = Tensor::empty(call.device, q->shape(), q->dtype());
  TensorPtr dk = Tensor::empty(call.device, k->shape(), k->dtype());
  TensorPtr dv = Tensor::empty(call.device, v->shape(), v->dtype());
  return {{dq, dk, dv}, {}, [dout, q, k, v, out, lse, cu, dq, dk, dv, dims, op = call.op] {
            withComputeType(q->dtype(), [&](auto zero) {
              using C = decltype(zero);
              HostIn<C> douth(*dout), qh(*q), kh(*k), vh(*v), outh(*out);
              HostOut<C> dqh(*dq, false), dkh(*dk, false), dvh(*dv, false);
              cpu::attentionBackward<C>(dims, op, douth.data(), qh.data(), kh.data(), vh.data(), outh.data(),
                                        lse->data<C>(), cu->data<int32_t>(), dqh.data(), dkh.data(), dvh.data());
              dqh.commit();
              dkh.commit();
              dvh.commit();
            });
          }};
}

// kvCacheWrite(cache [B, Hkv, maxTokens, D], values [T, Hkv, D], cuSeqlens, offsets [B]): in place.
OpPlan buildKvCacheWrite(const OpCall& call) {
  const TensorPtr& cache = input(call, 0, "cache");
  const TensorPtr& values = input(call, 1, "values");
  const TensorPtr& cu = input(call, 2, "cuSeqlens");
  const TensorPtr& offsets = input(call, 3, "offsets");
  const int64_t batch = expectSeqlens(call, *cu);
  expectSameDtype(call, *cache, "cache", *values, "values");
  expectRank(call, *cache, "cache", 4);
  expectRank(call, *values, "values", 3);
  if (cache->dim(0) != batch || cache->dim(1) != values->dim(1) || cache->dim(3) != values->dim(2)) {
    failShape(call, str("cache (", cache->describe(), ") must be [B = ", batch, ", Hkv, maxTokens, D] for values (",
                        values->describe(), ")"));
  }
  expectDtype(call, *offsets, "offsets", {DType::I32});
  expectShape(call, *offsets, "offsets", {batch});
  cpu::AttentionDims dims{values->dim(0), 0, values->dim(1), values->dim(2), batch, cache->dim(2), false, 0};
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    // The CUDA copy reads values while it writes the cache: they must not overlap.
    if (values->storage() == cache->storage() && values->byteOffset() < cache->byteOffset() + cache->nbytes() &&
        cache->byteOffset() < values->byteOffset() + values->nbytes()) {
      fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") values (", values->describe(),
           ") must not overlap the cache (", cache->describe(), "); pass a copy");
    }
    IndexCheck check(call, offsets, "offsets");
    cudaStream_t stream = streamOf(call.device);
    return {{}, {cache}, [=, op = call.op] {
              gpu::kvCacheWrite(cache->raw(), values->raw(), dtypeSize(values->dtype()), dims.tokens, dims.kvHeads,
                                dims.headDim, dims.batch, dims.maxTokens, cu->data<int32_t>(), offsets->data<int32_t>(),
                                check.flag(), stream);
              // A flagged sequence: the CPU backend's checks on host copies throw its message.
              check.verify(stream, [&](const int32_t* offs) {
                cpu::checkKvCacheIndices(dims, op, hostInts(*cu).data(), offs);
              });
            }};
  }
#endif
  expectCpu(call);
  return {{}, {cache}, [cache, values, cu, offsets, dims, op = call.op] {
            cpu::kvCacheWrite(dims, op, cache->raw(), values->raw(), dtypeSize(values->dtype()),
                              cu->data<int32_t>(), offsets->data<int32_t>());
          }};
}

}  // namespace

REGISTER_OP(buildAttention, {"attention", {"q", "k", "v", "cuSeqlens", "qOffset?", "kvLens?"}, {attr::flag("causal", true), attr::optionalNumber("scale"), attr::flag("indicesChecked", false)}, {"out", "lse"}});
REGISTER_OP(buildAttentionBackward, {"attentionBackward", {"dout", "q", "k", "v", "out", "lse", "cuSeqlens"}, {attr::flag("causal", true), attr::optionalNumber("scale"), attr::flag("deterministic", true), attr::flag("indicesChecked", false)}, {"dq", "dk", "dv"}});
REGISTER_OP(buildKvCacheWrite, {"kvCacheWrite", {"cache", "values", "cuSeqlens", "offsets"}, {attr::flag("indicesChecked", false)}, {}});

}  // namespace seqtune
