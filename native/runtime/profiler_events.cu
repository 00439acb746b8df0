// The profiler's CUDA events (native/runtime/profiler.h): timing marks on a device's stream, put
// on the profiler's host clock through an anchor event. The anchor is recorded and waited for once
// (the stream idles then, so its completion time is the host time read right after), and marks
// are timed against it. It is dropped when no mark of the device is outstanding (after each take),
// so spans stay short and cudaEventElapsedTime's float milliseconds keep sub-microsecond steps.
#include <cuda_runtime_api.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/common/cuda_check.h"
#include "native/runtime/cuda_device.h"
#include "native/runtime/device.h"
#include "native/runtime/profiler.h"

namespace seqtune::profiler {

namespace {

struct Mark {
  cudaEvent_t event = nullptr;
  Device* device = nullptr;
};

struct Anchor {
  cudaEvent_t event = nullptr;
  double us = 0;
  int outstanding = 0;  // marks recorded against it and not yet released
};

std::mutex mutex;
std::vector<Mark*> pool;
std::unordered_map<Device*, Anchor> anchors;

}  // namespace

// Device thread of `device`.
void* gpuMark(Device* device) {
  cudaStream_t stream = streamOf(device);
  Mark* mark = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (!pool.empty()) {
    mark = pool.back();
    pool.pop_back();
  } else {
    mark = new Mark();
    cudaCheck(cudaEventCreate(&mark->event), "profiler: cudaEventCreate");
  }
  mark->device = device;
  Anchor& anchor = anchors[device];
  if (anchor.outstanding == 0) {
    if (!anchor.event) cudaCheck(cudaEventCreate(&anchor.event), "profiler: cudaEventCreate");
    cudaCheck(cudaEventRecord(anchor.event, stream), "profiler: cudaEventRecord");
    cudaCheck(cudaEventSynchronize(anchor.event), "profiler: cudaEventSynchronize");
    anchor.us = nowUs();
  }
  ++anchor.outstanding;
  cudaCheck(cudaEventRecord(mark->event, stream), "profiler: cudaEventRecord");
  return mark;
}

// After the stream has passed the mark (take() synchronises first).
double gpuMarkUs(Device* device, void* handle) {
  const Mark* mark = static_cast<const Mark*>(handle);
  std::lock_guard<std::mutex> lock(mutex);
  const Anchor& anchor = anchors[device];
  float ms = 0;
  cudaCheck(cudaEventElapsedTime(&ms, anchor.event, mark->event), "profiler: cudaEventElapsedTime");
  return anchor.us + 1000.0 * ms;
}

void gpuRelease(void* handle) {
  Mark* mark = static_cast<Mark*>(handle);
  std::lock_guard<std::mutex> lock(mutex);
  --anchors[mark->device].outstanding;
  pool.push_back(mark);
}

}  // namespace seqtune::profiler
