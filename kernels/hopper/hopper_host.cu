// kernels/hopper/hopper_host.h: tensor-map encoding and the per-device runnability check.
#include "kernels/hopper/hopper_host.h"

#include <cudaTypedefs.h>

#include "kernels/common/errors.h"

namespace seqtune::gpu {

namespace {

// cuTensorMapEncodeTiled from the driver cudart already loaded; null without one.
PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

}  // namespace

bool encodeTensorMap(CUtensorMap* map, DType dtype, const void* base, const uint64_t (&dims)[3],
                     const uint64_t (&strides)[2], const uint32_t (&box)[3], std::string* why) {
  const PFN_cuTensorMapEncodeTiled_v12000 fn = encoder();
  if (!fn) {
    if (why) *why = "the driver has no cuTensorMapEncodeTiled";
    return false;
  }
  const cuuint64_t d[3] = {dims[0], dims[1], dims[2]};
  const cuuint64_t s[2] = {strides[0], strides[1]};
  const cuuint32_t b[3] = {box[0], box[1], box[2]};
  const cuuint32_t elementStrides[3] = {1, 1, 1};
  const CUtensorMapDataType type =
      dtype == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult r = fn(map, type, 3, const_cast<void*>(base), d, s, b, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    if (why) *why = str("the driver refused a tensor map (CUresult ", static_cast<int>(r), ")");
    return false;
  }
  return true;
}

bool hopperKernelCheck(const void* kernel, int smemBytes, int launchRegs, HopperKernelState& state,
                       std::string* why) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = "no current device";
    return false;
  }
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((state.checked.load(std::memory_order_acquire) & bit) == 0) {
    cudaFuncAttributes attr{};
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&attr, kernel);
    const bool ok =
        e == cudaSuccess && attr.ptxVersion == 90 && attr.binaryVersion == 90 && attr.numRegs == launchRegs;
    if (!ok) {
      cudaGetLastError();
      if (why) {
        *why = str("kernel not runnable here (", cudaGetErrorString(e), "; PTX ", attr.ptxVersion, ", SASS ",
                   attr.binaryVersion, ", ", attr.numRegs, " registers; want 90, 90, ", launchRegs, ")");
      }
    }
    if (ok) state.usable.fetch_or(bit, std::memory_order_relaxed);
    state.checked.fetch_or(bit, std::memory_order_release);
    return ok;
  }
  const bool ok = (state.usable.load(std::memory_order_relaxed) & bit) != 0;
  if (!ok && why) *why = "kernel not runnable here (found at its first use)";
  return ok;
}

}  // namespace seqtune::gpu
