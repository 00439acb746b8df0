// Host side of the Hopper kernels (gemm_hopper.cu, flash_attention_hopper.cu): TMA tensor maps
// encoded through the driver that cudart already loaded (no libcuda link), and the once-per-device
// check that a kernel is runnable as built. Needs the CUDA headers (CUtensorMap's type).
#pragma once
#include <cuda.h>  // CUtensorMap and the encode function's types only
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// A rank-3 tiled map of 16-bit elements (dims and box innermost first, strides in bytes of
// dimensions 1 and 2), 128-byte swizzle, zero fill out of bounds (zeros add nothing to products).
// False when the driver lacks cuTensorMapEncodeTiled or refuses the map; why then says which.
bool encodeTensorMap(CUtensorMap* map, DType dtype, const void* base, const uint64_t (&dims)[3],
                     const uint64_t (&strides)[2], const uint32_t (&box)[3], std::string* why);

// Per kernel instantiation: the devices it was checked on, and those where it can run.
struct HopperKernelState {
  std::atomic<uint64_t> checked{0}, usable{0};
};

bool hopperKernelCheck(const void* kernel, int smemBytes, int launchRegs, HopperKernelState& state,
                       std::string* why);

// Once per device and kernel: raises the kernel's shared-memory limit and checks that it is the
// sm_90a build with exactly the launch allocation its setmaxnreg split relies on (a shortfall
// would block setmaxnreg.inc forever). False, with the reason in *why, otherwise.
template <class Kernel>
bool hopperKernelReady(Kernel kernel, int smemBytes, int launchRegs, HopperKernelState& state, std::string* why) {
  return hopperKernelCheck(reinterpret_cast<const void*>(kernel), smemBytes, launchRegs, state, why);
}

}  // namespace seqtune::gpu
