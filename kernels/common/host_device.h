// SEQTUNE_HD marks the functions compiled both into the CUDA kernels and, with g++, into their host
// checks (test/kernels), so those checks run the kernels' own code.
#pragma once

#if defined(__CUDACC__)
#define SEQTUNE_HD __host__ __device__ __forceinline__
#else
#define SEQTUNE_HD inline
#endif
