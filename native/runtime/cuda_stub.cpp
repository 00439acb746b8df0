// The CPU-only build: CUDA was not compiled in, so no GPU can be used.
#ifndef SEQTUNE_CUDA
#include "native/runtime/device.h"
#include "kernels/common/errors.h"

namespace seqtune {

CudaStatus cudaStatus() {
  CudaStatus status;
  status.compiled = false;
  status.reason =
      "this addon was built without CUDA (nvcc was not found, or SEQTUNE_CUDA=OFF, when it was compiled); install the CUDA toolkit and "
      "rebuild with `npm run build:native`";
  return status;
}

Device* cudaDevice(int index) { fail(code::kDevice, "cuda:", index, " is not available: ", cudaStatus().reason); }

size_t gpuFreeMemory(int index) { fail(code::kDevice, "cuda:", index, " is not available: ", cudaStatus().reason); }

std::vector<KernelState> hopperKernelStates(int) { return {}; }

}  // namespace seqtune
#endif
