// What a kernel launcher tells the per-op profiler (native/runtime/profiler.h): the path this
// launch takes ("hopper", "mma", "simt"). Without a note, a CUDA op reports "simt" (CUDA-core
// kernels) and a CPU op "cpu". Costs one thread-local test when the profiler is off.
#pragma once
#include <string>

namespace seqtune::profiler {

namespace detail {
extern thread_local std::string* currentKernels;
void addKernel(const char* path);
}  // namespace detail
inline void noteKernel(const char* path) {
  if (detail::currentKernels) detail::addKernel(path);
}

}  // namespace seqtune::profiler
