// The Hopper kernels that run only after a one-time self-test on a device (hopper_selftest.h), with
// their state on GPU `device` now: "untested" (runs at the first eligible call), "on", or
// "off: <why>". Empty on a device that is not compute capability 9.0 and without CUDA. Implemented
// in hopper_selftest.cu, or by the CPU-only stub (native/runtime/cuda_stub.cpp). Plain C++.
#pragma once
#include <string>
#include <vector>

namespace seqtune {

struct KernelState {
  std::string kernel, state;
};
std::vector<KernelState> hopperKernelStates(int device);

}  // namespace seqtune
