// Checked CUDA runtime calls: a failing call becomes seqtune::Error(ERR_CUDA) naming the call, so
// nothing reachable from JS exits or aborts. A fault inside a kernel is reported by the next call
// that synchronises with the stream (a read-back or sync()).
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/common/errors.h"

namespace seqtune {

// Errors after which the CUDA context stays broken: every later call returns them again.
inline bool isStickyCudaError(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

[[noreturn]] inline void throwCuda(const char* what, cudaError_t e) {
  const bool sticky = isStickyCudaError(e);
  // A non-sticky error is also latched as the thread's "last error": clear it so the next
  // launch check does not report it a second time.
  if (!sticky) cudaGetLastError();
  fail(code::kCuda, what, ": ", cudaGetErrorString(e),
       sticky ? " (a GPU kernel faulted; the CUDA context cannot be used again: restart the process)" : "");
}

inline void cudaCheck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throwCuda(what, e);
}

// Right after a launch: reports a bad launch configuration at once.
inline void checkLaunch(const char* kernel) { cudaCheck(cudaGetLastError(), kernel); }

}  // namespace seqtune
