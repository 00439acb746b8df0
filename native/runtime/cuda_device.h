// What op builders need from a CUDA device beyond the Device interface. Plain C++: includable from
// .cpp files without the CUDA headers.
#pragma once

#include "kernels/common/cuda_stream.h"

namespace seqtune {

class Device;

// The device's one in-order stream: everything an op launches goes on it, from the device thread
// (which has the GPU bound as its current device). Throws Error(ERR_DEVICE) for a CPU device.
cudaStream_t streamOf(Device* device);

}  // namespace seqtune
