// kernels/gemm/lora_reduce.h: grid-stride kernels over the [rows, cols] elements, one thread per
// element at a time; the split-K partials are summed in split order (deterministic, no atomics).
#include "kernels/gemm/gemm_tc.h"
#include "kernels/gemm/lora_reduce.h"

namespace seqtune::gpu {

namespace tc = seqtune::gemm;

namespace {

int gridFor(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<int>(b < 1 ? 1 : (b > 4096 ? 4096 : b));
}

// v rounded to H, as a float (partOf's rounding).
template <typename H>
struct RoundTo {
  __device__ float operator()(float v) const { return tc::toFloat(tc::fromFloat<H>(v)); }
};

template <typename S, typename H>
__global__ void splitKernel(const S* src, int64_t rows, int64_t cols, H* dst, int64_t ld, int count, unsigned loMask,
                            bool rowBlocks) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float v = tc::toFloat(src[i]);
    for (int p = 0; p < count; ++p) {
      dst[tc::partIndex(r, c, p, rows, cols, ld, rowBlocks)] = tc::fromFloat<H>(tc::partOf(v, p, loMask, RoundTo<H>{}));
    }
  }
}

template <typename O1, typename H>
__global__ void reduceKernel(const float* part, int splits, int64_t rows, int64_t cols, float alpha, O1* out1, H* out2,
                             int64_t ld2, ReduceForm form) {
  const int64_t n = rows * cols, stride = form.foldHalves ? 2 * n : n;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int k = 0; k < splits; ++k) s += part[k * stride + i];
    if (form.foldHalves) {
      for (int k = 0; k < splits; ++k) s += part[k * stride + n + i];
    }
    s *= alpha;
    if (out1) out1[i] = tc::fromFloat<O1>(s);
    if (out2) {
      const float v = form.scale2 * s;
      for (int p = 0; p < form.parts.count; ++p) {
        out2[tc::partIndex(i / cols, i % cols, p, rows, cols, ld2, false)] =
            tc::fromFloat<H>(tc::partOf(v, p, form.parts.uLo, RoundTo<H>{}));
      }
    }
  }
}

template <typename H>
void reduceIn(const float* part, int splits, int64_t rows, int64_t cols, double alpha, void* out1, DType out1Dtype,
              void* out2, int64_t ld2, cudaStream_t stream, ReduceForm form) {
  const int grid = gridFor(rows * cols);
  H* o2 = static_cast<H*>(out2);
  if (out1 && out1Dtype == DType::F32) {
    reduceKernel<float, H><<<grid, 256, 0, stream>>>(part, splits, rows, cols, static_cast<float>(alpha),
                                                     static_cast<float*>(out1), o2, ld2, form);
  } else {
    reduceKernel<H, H><<<grid, 256, 0, stream>>>(part, splits, rows, cols, static_cast<float>(alpha),
                                                 static_cast<H*>(out1), o2, ld2, form);
  }
  checkLaunch("loraLinear (split-K reduction)");
}

template <typename H>
void splitIn(const void* src, DType srcDtype, int64_t rows, int64_t cols, tc::LoraParts parts, bool rowBlocks, void* dst,
             int64_t ld, cudaStream_t stream) {
  const int grid = gridFor(rows * cols);
  H* d = static_cast<H*>(dst);
  if (srcDtype == DType::F32) {
    splitKernel<float, H><<<grid, 256, 0, stream>>>(static_cast<const float*>(src), rows, cols, d, ld, parts.count,
                                                    parts.vLo, rowBlocks);
  } else {
    splitKernel<H, H><<<grid, 256, 0, stream>>>(static_cast<const H*>(src), rows, cols, d, ld, parts.count, parts.vLo,
                                                rowBlocks);
  }
  checkLaunch("loraLinear (adapter parts)");
}

}  // namespace

void reducePartials(DType half, const float* part, int splits, int64_t rows, int64_t cols, double alpha, void* out1,
                    DType out1Dtype, void* out2, int64_t ld2, cudaStream_t stream, ReduceForm form) {
  if (rows * cols == 0) return;
  if (half == DType::BF16) return reduceIn<__nv_bfloat16>(part, splits, rows, cols, alpha, out1, out1Dtype, out2, ld2, stream, form);
  reduceIn<__half>(part, splits, rows, cols, alpha, out1, out1Dtype, out2, ld2, stream, form);
}

void splitParts(DType half, const void* src, DType srcDtype, int64_t rows, int64_t cols, tc::LoraParts parts,
                bool rowBlocks, void* dst, int64_t ld, cudaStream_t stream) {
  if (rows * cols == 0) return;
  if (half == DType::BF16) return splitIn<__nv_bfloat16>(src, srcDtype, rows, cols, parts, rowBlocks, dst, ld, stream);
  splitIn<__half>(src, srcDtype, rows, cols, parts, rowBlocks, dst, ld, stream);
}

}  // namespace seqtune::gpu
