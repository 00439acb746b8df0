// matmul and matmulBackward (lib/ops.ts): the builders check shapes and dispatch. The CPU loops are
// native/cpu/matmul.cpp; on a CUDA device the same products run on kernels/gemm/gemm.h (bf16/f16 on
// the tensor cores with f32 accumulation, f32/f64 SIMT).
#include <algorithm>

#include "native/cpu/matmul.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "native/runtime/cuda_device.h"
#include "kernels/gemm/gemm.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

using Geometry = cpu::MatmulGeometry;

std::string describeOperand(const Tensor& t, bool trans) { return t.describe() + (trans ? " (transposed)" : ""); }

Geometry resolve(const OpCall& call, const Tensor& a, const Tensor& b) {
  Geometry g;
  g.transA = call.attrs.flag("transA");
  g.transB = call.attrs.flag("transB");
  expectFloat(call, a, "a");
  expectSameDtype(call, a, "a", b, "b");
  if (a.rank() < 2) failShape(call, str("a must have rank >= 2 ([..., M, K]), got ", a.describe()));
  if (b.rank() < 2) failShape(call, str("b must have rank >= 2 ([..., K, N]), got ", b.describe()));
  g.M = g.transA ? a.dim(-1) : a.dim(-2);
  g.K = g.transA ? a.dim(-2) : a.dim(-1);
  g.N = g.transB ? b.dim(-2) : b.dim(-1);
  const int64_t kb = g.transB ? b.dim(-1) : b.dim(-2);
  if (kb != g.K) {
    failShape(call, str("inner dimensions differ: a ", describeOperand(a, g.transA), " has K = ", g.K, " but b ",
                        describeOperand(b, g.transB), " has K = ", kb));
  }
  g.sharedB = b.rank() == 2;
  const Shape lead(a.shape().begin(), a.shape().end() - 2);
  if (!g.sharedB && Shape(b.shape().begin(), b.shape().end() - 2) != lead) {
    failShape(call, str("batch dimensions differ: a ", a.describe(), ", b ", b.describe(),
                        " (b must have a's leading dimensions or be 2-D)"));
  }
  g.batch = shapeNumel(lead);
  g.out = lead;
  g.out.push_back(g.M);
  g.out.push_back(g.N);
  return g;
}

#ifdef SEQTUNE_CUDA
// One (possibly batched) product C = alpha · op(A) · op(B) on the device; strides in elements.
struct DeviceProduct {
  bool transA, transB;
  int64_t M, N, K, batch;
  const void* a;
  int64_t lda, strideA;
  const void* b;
  int64_t ldb, strideB;
  void* c;
  int64_t ldc, strideC;
};

gpu::GemmArgs gemmArgs(DType dtype, const DeviceProduct& p, double alpha) {
  gpu::GemmArgs args;
  args.dtype = args.outDtype = dtype;
  args.transA = p.transA;
  args.transB = p.transB;
  args.M = p.M;
  args.N = p.N;
  args.K = p.K;
  args.batch = p.batch;
  args.a = p.a;
  args.lda = p.lda;
  args.strideA = p.strideA;
  args.b = p.b;
  args.ldb = p.ldb;
  args.strideB = p.strideB;
  args.c = p.c;
  args.ldc = p.ldc;
  args.strideC = p.strideC;
  args.alpha = alpha;
  return args;
}

// Runs the products in order on the stream, with split-K workspace sized for the largest. Device
// thread only: the workspace queries read the current device's SM count, so the scratch is taken
// here rather than in the builder; it returns to the cache after the launches, for later work on
// the same in-order stream.
void runProducts(Device* device, std::vector<gpu::GemmArgs> products, cudaStream_t stream) {
  size_t bytes = 0;
  for (const gpu::GemmArgs& p : products) bytes = std::max(bytes, gpu::gemmWorkspaceBytes(p));
  TensorPtr workspace = bytes > 0 ? scratchBytes(device, bytes) : nullptr;
  for (gpu::GemmArgs& p : products) {
    if (workspace) {
      p.workspace = workspace->raw();
      p.workspaceBytes = bytes;
    }
    gpu::gemm(p, stream);
  }
}

// Element `elements` of a device tensor (pointer arithmetic only).
void* at(const Tensor& t, int64_t elements) {
  return static_cast<char*>(t.raw()) + elements * static_cast<int64_t>(dtypeSize(t.dtype()));
}

// forward(): c = alpha · op(a) · op(b) + bias.
gpu::GemmArgs forwardProduct(const Geometry& g, const Tensor& a, const Tensor& b, const Tensor* bias, double alpha,
                             Tensor& c) {
  DeviceProduct p{g.transA, g.transB, g.M, g.N, g.K, g.batch, a.raw(), g.lda(), g.aStride(), b.raw(), g.ldb(),
                  g.bStride(), c.raw(), g.N, g.cStride()};
  if (g.sharedB && !g.transA) {  // a's rows are contiguous across batches: one taller product
    p.M = g.batch * g.M;
    p.batch = 1;
    p.strideA = p.strideB = p.strideC = 0;
  }
  gpu::GemmArgs args = gemmArgs(a.dtype(), p, alpha);
  if (bias) {
    args.bias = bias->raw();
    args.biasDtype = bias->dtype();
  }
  return args;
}

// gradA(): the same operand mapping as the CPU.
gpu::GemmArgs gradAProduct(const Geometry& g, const Tensor& dc, const Tensor& b, double alpha, Tensor& da) {
  DeviceProduct p;
  if (g.transA) {  // a is [K, M]: da = alpha · op(b) · dcᵀ
    p = {g.transB, true, g.K, g.M, g.N, g.batch, b.raw(), g.ldb(), g.bStride(), dc.raw(), g.N, g.cStride(),
         da.raw(), g.M, g.aStride()};
  } else if (g.sharedB) {
    p = {false, !g.transB, g.batch * g.M, g.K, g.N, 1, dc.raw(), g.N, 0, b.raw(), g.ldb(), 0, da.raw(), g.K, 0};
  } else {
    p = {false, !g.transB, g.M, g.K, g.N, g.batch, dc.raw(), g.N, g.cStride(), b.raw(), g.ldb(), g.bStride(),
         da.raw(), g.K, g.aStride()};
  }
  return gemmArgs(dc.dtype(), p, alpha);
}

// gradB()'s product over `m` rows: A stride sa, dc stride sc, db stride sd (elements).
DeviceProduct gradBProduct(const Geometry& g, int64_t m, bool transA, const void* a, int64_t lda, int64_t sa,
                           const void* dc, int64_t sc, void* db, int64_t sd, int64_t batch) {
  if (g.transB) {  // b is [N, K]: db = alpha · dcᵀ · op(a)
    return {true, transA, g.N, g.K, m, batch, dc, g.N, sc, a, lda, sa, db, g.K, sd};
  }
  return {!transA, false, g.K, g.N, m, batch, a, lda, sa, dc, g.N, sc, db, g.N, sd};
}

// Whether gradB() sums a shared b's batches in several products (a transposed a cannot fold them
// into one reduction) with 16-bit storage: then the running sum lives in an f32 scratch, as the
// CPU keeps it in f32 and rounds once. Accumulating in db itself (beta = 1 on a bf16/f16 db)
// rounded after every batch: with 6 batches of 5 rows, bf16 db was off by up to ~12 ulps.
bool gradBNeedsF32Sum(const Geometry& g, DType dtype) {
  return g.sharedB && g.transA && g.batch > 1 && dtype != DType::F32 && dtype != DType::F64;
}

// gradB(): a shared b sums over the batches, in batch order (beta = 1 after the first), into
// `sum` (f32, b's shape; gradBNeedsF32Sum) or else into db.
std::vector<gpu::GemmArgs> gradBProducts(const Geometry& g, const Tensor& dc, const Tensor& a, double alpha,
                                         Tensor& db, void* sum) {
  const DType dtype = a.dtype();
  if (g.sharedB && !g.transA) {  // batches folded into the reduction
    return {gemmArgs(dtype, gradBProduct(g, g.batch * g.M, false, a.raw(), g.K, 0, dc.raw(), 0, db.raw(), 0, 1),
                     alpha)};
  }
  if (!g.sharedB) {
    return {gemmArgs(dtype,
                     gradBProduct(g, g.M, g.transA, a.raw(), g.lda(), g.aStride(), dc.raw(), g.cStride(), db.raw(),
                                  g.bStride(), g.batch),
                     alpha)};
  }
  std::vector<gpu::GemmArgs> products;
  void* target = sum ? sum : db.raw();
  // No batches: one empty reduction (K = 0), which writes db's zeros.
  for (int64_t i = 0; i < std::max<int64_t>(g.batch, 1); ++i) {
    const int64_t m = g.batch > 0 ? g.M : 0;
    gpu::GemmArgs p = gemmArgs(
        dtype, gradBProduct(g, m, true, at(a, i * g.aStride()), g.lda(), 0, at(dc, i * g.cStride()), 0, target, 0, 1),
        alpha);
    if (sum) p.outDtype = DType::F32;
    if (i > 0) {
      p.beta = 1;
      p.cin = target;
      p.ldcin = p.ldc;
    }
    products.push_back(p);
  }
  return products;
}
#endif  // SEQTUNE_CUDA

// matmul(a, b, bias?) {transA, transB, alpha} -> c
OpPlan buildMatmul(const OpCall& call) {
  const TensorPtr& a = input(call, 0, "a");
  const TensorPtr& b = input(call, 1, "b");
  TensorPtr bias = optionalInput(call, 2);
  const Geometry g = resolve(call, *a, *b);
  if (bias) {
    expectSameDtype(call, *a, "a", *bias, "bias");
    expectShape(call, *bias, "bias", {g.N});
  }
  const double alpha = call.attrs.number("alpha");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    TensorPtr out = Tensor::empty(call.device, g.out, a->dtype());
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    return {{out}, {}, [a, b, bias, out, g, alpha, device, stream] {
              runProducts(device, {forwardProduct(g, *a, *b, bias.get(), alpha, *out)}, stream);
            }};
  }
#endif
  expectCpu(call);
  TensorPtr out = Tensor::empty(call.device, g.out, a->dtype());
  return {{out}, {}, [a, b, bias, out, g, alpha] { cpu::matmul(g, *a, *b, bias.get(), alpha, *out); }};
}

// The gradients asked for, and the op's outputs in order.
struct Grads {
  TensorPtr da, db, dbias;
  std::vector<TensorPtr> outputs;
};

Grads allocateGrads(const OpCall& call, const Tensor& a, const Tensor& b, const Geometry& g, bool needA, bool needB,
                    bool needBias) {
  Grads r;
  if (needA) r.da = Tensor::empty(call.device, a.shape(), a.dtype());
  if (needB) r.db = Tensor::empty(call.device, b.shape(), b.dtype());
  if (needBias) r.dbias = Tensor::empty(call.device, {g.N}, a.dtype());
  for (const TensorPtr& t : {r.da, r.db, r.dbias}) {
    if (t) r.outputs.push_back(t);
  }
  return r;
}

// matmulBackward(dc, a, b) {transA, transB, alpha, needA, needB, needBias} -> [da?, db?, dbias?]
OpPlan buildMatmulBackward(const OpCall& call) {
  const TensorPtr& dc = input(call, 0, "dc");
  const TensorPtr& a = input(call, 1, "a");
  const TensorPtr& b = input(call, 2, "b");
  const Geometry g = resolve(call, *a, *b);
  expectSameDtype(call, *a, "a", *dc, "dc");
  expectShape(call, *dc, "dc", g.out);
  const double alpha = call.attrs.number("alpha");
  const bool needA = call.attrs.flag("needA");
  const bool needB = call.attrs.flag("needB");
  const bool needBias = call.attrs.flag("needBias");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    const Grads r = allocateGrads(call, *a, *b, g, needA, needB, needBias);
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    const TensorPtr dbSum = r.db && gradBNeedsF32Sum(g, a->dtype()) ? Tensor::empty(device, b->shape(), DType::F32) : nullptr;
    return {r.outputs, {}, [dc, a, b, da = r.da, db = r.db, dbias = r.dbias, dbSum, g, alpha, device, stream] {
              std::vector<gpu::GemmArgs> products;
              if (da) products.push_back(gradAProduct(g, *dc, *b, alpha, *da));
              if (db) {
                for (const gpu::GemmArgs& p : gradBProducts(g, *dc, *a, alpha, *db, dbSum ? dbSum->raw() : nullptr)) {
                  products.push_back(p);
                }
              }
              runProducts(device, std::move(products), stream);
              if (dbSum) {  // one rounding of the f32 sum into db
                const int64_t cols = b->dim(1);
                gpu::convertMatrix(dbSum->raw(), DType::F32, cols, db->raw(), db->dtype(), cols, b->dim(0), cols, stream);
              }
              if (dbias) {
                const int64_t rows = g.batch * g.M;
                const size_t bytes = gpu::gemmBiasGradWorkspaceBytes(rows, g.N);
                TensorPtr workspace = bytes > 0 ? scratchBytes(device, bytes) : nullptr;
                gpu::gemmBiasGrad(dbias->raw(), dc->raw(), dc->dtype(), rows, g.N, g.N,
                                  workspace ? workspace->raw() : nullptr, stream);
              }
            }};
  }
#endif
  expectCpu(call);
  const Grads r = allocateGrads(call, *a, *b, g, needA, needB, needBias);
  return {r.outputs, {}, [dc, a, b, da = r.da, db = r.db, dbias = r.dbias, g, alpha] {
            cpu::matmulBackward(g, *dc, *a, *b, alpha, da.get(), db.get(), dbias.get());
          }};
}

}  // namespace

REGISTER_OP(buildMatmul, {"matmul", {"a", "b", "bias?"}, {attr::flag("transA", false), attr::flag("transB", false), attr::number("alpha", 1.0)}, {"c"}});
REGISTER_OP(buildMatmulBackward, {"matmulBackward", {"dc", "a", "b"}, {attr::flag("transA", false), attr::flag("transB", false), attr::number("alpha", 1.0), attr::flag("needA", true), attr::flag("needB", true), attr::flag("needBias", false)}, {{"da", "needA"}, {"db", "needB"}, {"dbias", "needBias"}}});

}  // namespace seqtune
