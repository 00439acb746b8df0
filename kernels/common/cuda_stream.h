// CUDA's stream handle without the CUDA headers (the typedef is CUDA's own), so the launchers'
// headers stay includable from plain .cpp files.
#pragma once

typedef struct CUstream_st* cudaStream_t;
