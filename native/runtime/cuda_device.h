// What op builders need from a CUDA device beyond the Device interface. Plain C++: includable from
// .cpp files without the CUDA headers (the typedef is CUDA's own).
#pragma once

typedef struct CUstream_st* cudaStream_t;

namespace seqtune {

class Device;

// The device's one in-order stream: everything an op launches goes on it, from the device thread
// (which has the GPU bound as its current device). Throws Error(ERR_DEVICE) for a CPU device.
cudaStream_t streamOf(Device* device);

}  // namespace seqtune
