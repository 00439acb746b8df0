// Rotary position embedding (Hugging Face rotate_half layout: element i pairs with i + D/2) with
// the rope_scaling variants LLaMA checkpoints use. The backward is the same rotation by the
// negative angle (`inverse`), since a rotation's transpose is its inverse. On a CUDA device the
// same inv_freq (made here on the host) is uploaded and kernels/elementwise/rope.cu rotates.
#include <cmath>

#include "native/cpu/rope.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/rope.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

constexpr double kPi = 3.14159265358979323846;

double positiveAttr(const OpCall& call, const char* name) {
  const double v = call.attrs.number(name);
  if (!(v > 0) || !std::isfinite(v)) fail(code::kArgument, call.op, ": ", name, " must be finite and > 0, got ", v);
  return v;
}

// inv_freq[i] = theta^(-2i/D), adjusted for 'llama3' like transformers' _compute_llama3_parameters:
// long wavelengths (beyond the original context / lowFreqFactor) are slowed by `factor`, short ones
// (below original / highFreqFactor) are kept, and those in between are interpolated.
cpu::RopeParams ropeParams(const OpCall& call, int64_t dim) {
  cpu::RopeParams p;
  const double theta = positiveAttr(call, "theta");
  const std::string type = call.attrs.text("scalingType");
  p.inverse = call.attrs.flag("inverse");
  const int64_t half = dim / 2;
  p.invFreq.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    p.invFreq[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dim));
  }
  if (type == "none") return p;
  const double factor = positiveAttr(call, "factor");
  if (type == "linear") {
    p.positionScale = 1.0 / factor;
    return p;
  }
  if (type != "llama3") {
    fail(code::kArgument, call.op, ": scalingType must be 'none', 'linear' or 'llama3', got '", type, "'");
  }
  const double low = positiveAttr(call, "lowFreqFactor");
  const double high = positiveAttr(call, "highFreqFactor");
  const double original = positiveAttr(call, "originalMaxPositionEmbeddings");
  if (!(high > low)) {
    fail(code::kArgument, call.op, ": llama3 scaling needs highFreqFactor > lowFreqFactor, got ", high, " and ", low);
  }
  const double lowFreqWavelen = original / low;
  const double highFreqWavelen = original / high;
  for (double& f : p.invFreq) {
    const double wavelen = 2 * kPi / f;
    if (wavelen > lowFreqWavelen) {
      f /= factor;
    } else if (wavelen >= highFreqWavelen) {
      const double smooth = (original / wavelen - low) / (high - low);
      f = (1 - smooth) * f / factor + smooth * f;
    }
  }
  return p;
}

OpPlan buildRope(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "x");
  const TensorPtr& positions = input(call, 1, "positionIds");
  expectFloat(call, *x, "x");
  expectRank(call, *x, "x", 3);
  if (x->dim(2) % 2 != 0) failShape(call, str("head dim D of x [T, H, D] must be even, got ", x->describe()));
  expectDtype(call, *positions, "positionIds", {DType::I32});
  expectShape(call, *positions, "positionIds", {x->dim(0)});
  cpu::RopeParams params = ropeParams(call, x->dim(2));
  TensorPtr out = Tensor::empty(call.device, x->shape(), x->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    DeviceTable<double> invFreq(call.device, std::move(params.invFreq));
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [x, positions, out, invFreq, scale = params.positionScale, inverse = params.inverse, stream] {
              gpu::rope(out->raw(), x->raw(), positions->data<int32_t>(), invFreq.upload(), scale, x->dtype(),
                        x->dim(0), x->dim(1), x->dim(2), inverse, stream);
            }};
  }
#endif
  return {{out}, {}, [x, positions, params = std::move(params), out] {
            cpu::rope(*x, *positions, params, *out);
          }};
}

}  // namespace

REGISTER_OP(buildRope, {"rope", {"x", "positionIds"}, {attr::number("theta"), attr::text("scalingType", "none"), attr::number("factor", 1.0), attr::number("lowFreqFactor", 1.0), attr::number("highFreqFactor", 4.0), attr::number("originalMaxPositionEmbeddings", 8192.0), attr::flag("inverse", false)}, {"out"}});

}  // namespace seqtune
