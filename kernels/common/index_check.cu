#include <cuda_runtime_api.h>

#include "kernels/common/cuda_check.h"
#include "kernels/common/index_check.h"

namespace seqtune::gpu {

void resetIndexFlag(int* flag, cudaStream_t stream) {
  cudaCheck(cudaMemsetAsync(flag, 0, sizeof(int), stream), "index check: cudaMemsetAsync");
}

BadIndex firstBadIndex(const int* flag, const int32_t* indices, int64_t count, cudaStream_t stream) {
  int flagged = 0;
  cudaCheck(cudaMemcpyAsync(&flagged, flag, sizeof(int), cudaMemcpyDeviceToHost, stream), "index check: cudaMemcpyAsync");
  cudaCheck(cudaStreamSynchronize(stream), "index check: cudaStreamSynchronize");
  BadIndex bad;
  if (flagged <= 0) return bad;
  bad.position = count - flagged;
  cudaCheck(cudaMemcpyAsync(&bad.value, indices + bad.position, sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
            "index check: cudaMemcpyAsync");
  cudaCheck(cudaStreamSynchronize(stream), "index check: cudaStreamSynchronize");
  return bad;
}

}  // namespace seqtune::gpu
