// Token embedding lookup and its scatter-add backward. Token ids live in device memory, so their
// range is checked on the device thread, before any row is read or written. On a CUDA device
// kernels/elementwise/embedding.cu skips and flags bad ids instead, and the op then fails with the same error.
#include "native/cpu/embedding.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/embedding.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

// Throws ERR_INDEX (a rejected read-back) naming the first id outside [0, vocab).
void checkIds(const char* op, const int32_t* id, int64_t count, int64_t vocab, const std::string& table) {
  for (int64_t t = 0; t < count; ++t) {
    if (id[t] < 0 || id[t] >= vocab) {
      fail(code::kIndex, op, ": token id ", id[t], " at position ", t, " is out of range [0, ", vocab, ") for table ",
           table);
    }
  }
}

std::string tableName(DType dtype, const Shape& shape) { return str(dtypeName(dtype), shapeString(shape)); }

// The CPU's check of ids against `table` (the output for the backward).
void checkIds(const char* op, const int32_t* id, int64_t count, const Tensor& table) {
  checkIds(op, id, count, table.dim(0), tableName(table.dtype(), table.shape()));
}

void expectIds(const OpCall& call, const Tensor& ids) {
  expectDtype(call, ids, "ids", {DType::I32});
  expectRank(call, ids, "ids", 1);
}

// Rows are copied as raw bytes: exact in every dtype, and no f32 copy of a large bf16 table.
OpPlan buildEmbedding(const OpCall& call) {
  const TensorPtr& ids = input(call, 0, "ids");
  const TensorPtr& table = input(call, 1, "table");
  expectIds(call, *ids);
  expectFloat(call, *table, "table");
  expectRank(call, *table, "table", 2);
  TensorPtr out = Tensor::empty(call.device, {ids->dim(0), table->dim(1)}, table->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    IndexCheck check(call, ids, "ids");
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [op = call.op, ids, table, out, check, stream] {
              const int64_t tokens = ids->numel(), vocab = table->dim(0);
              gpu::embeddingForward(out->raw(), table->raw(), ids->data<int32_t>(), table->dtype(), tokens, vocab,
                                    table->dim(1), check.flag(), stream);
              check.verify(stream, [&](const int32_t* id) { checkIds(op, id, tokens, *table); });
            }};
  }
#endif
  return {{out}, {}, [op = call.op, ids, table, out] {
            checkIds(op, ids->data<int32_t>(), ids->numel(), *table);
            cpu::embedding(*ids, *table, *out);
          }};
}

OpPlan buildEmbeddingBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& ids = input(call, 1, "ids");
  expectFloat(call, *dout, "dout");
  expectRank(call, *dout, "dout", 2);
  expectIds(call, *ids);
  if (ids->dim(0) != dout->dim(0)) {
    failShape(call, str("ids (", ids->describe(), ") must have one id per row of dout (", dout->describe(), ")"));
  }
  const int64_t vocab = call.attrs.integer("vocabSize");
  if (vocab < 1 || vocab > (int64_t(1) << 31)) {
    fail(code::kArgument, call.op, ": vocabSize must be an integer in [1, 2^31], got ", vocab);
  }
  TensorPtr dtable = Tensor::empty(call.device, {vocab, dout->dim(1)}, dout->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    IndexCheck check(call, ids, "ids");
    // Sort buffers and CUB's scratch, sized with the GPU current on this thread (same arch).
    TensorPtr workspace = scratchBytes(call.device, gpu::embeddingBackwardWorkspaceBytes(ids->numel()));
    cudaStream_t stream = streamOf(call.device);
    return {{dtable}, {}, [op = call.op, dout, ids, dtable, vocab, workspace, check, stream] {
              const int64_t tokens = ids->numel();
              gpu::embeddingBackward(dtable->raw(), dout->raw(), ids->data<int32_t>(), dout->dtype(), tokens, vocab,
                                     dtable->dim(1), workspace->raw(), check.flag(), stream);
              check.verify(stream, [&](const int32_t* id) { checkIds(op, id, tokens, *dtable); });
            }};
  }
#endif
  return {{dtable}, {}, [op = call.op, dout, ids, dtable] {
            checkIds(op, ids->data<int32_t>(), ids->numel(), *dtable);
            cpu::embeddingBackward(*dout, *ids, *dtable);
          }};
}

}  // namespace

REGISTER_OP(buildEmbedding, {"embedding", {"ids", "table"}, {attr::flag("indicesChecked", false)}, {"out"}});
REGISTER_OP(buildEmbeddingBackward, {"embeddingBackward", {"dout", "ids"}, {attr::integer("vocabSize"), attr::flag("indicesChecked", false)}, {"dtable"}});

}  // namespace seqtune
