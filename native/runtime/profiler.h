// The per-op profiler (lib/profiler.ts builds the table and the Chrome trace from its records).
// When on, runOp wraps each queued op: host timers around its run on the device thread and, on a
// CUDA device, a pair of CUDA events recorded on the stream around what it launches. Kernel
// launchers name the path they took (noteKernel) so a record says which kernel ran. When off,
// the cost is one relaxed atomic load per op and one thread-local test per noted launch.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/common/kernel_note.h"
#include "native/runtime/tensor.h"

namespace seqtune {

class Device;
struct Task;

namespace profiler {

struct OpRecord {
  std::string op;
  std::string device;
  std::string inputs;   // e.g. "bf16[8192,2048] f32[16,2048] -"  ("-": an omitted optional input)
  std::string outputs;  // same form
  std::string kernels;  // paths that ran, e.g. "hopper", "mma+simt", "cpu"
  int64_t queueDepth = 0;  // tasks waiting on the device when this one was queued
  // Microseconds on the profiler's clock (steady, process-wide): when JS queued the op, and the
  // device thread's span of its run (on CUDA: the launches, not the kernels).
  double queuedUs = 0, hostBeginUs = 0, hostEndUs = 0;
  // CUDA: the stream's span between the two events, on the same clock; -1 on the CPU.
  double gpuBeginUs = -1, gpuEndUs = -1;
  bool failed = false;
};

extern std::atomic<bool> enabledFlag;
inline bool enabled() { return enabledFlag.load(std::memory_order_relaxed); }
void setEnabled(bool on);

double nowUs();

// runOp's hook (JS thread, only when enabled()): wraps task.run with the timers.
void instrument(Task& task, Device* device, const std::vector<TensorPtr>& inputs, const std::vector<TensorPtr>& outputs);

// Every record of `device` (null: of every device) since the last take, in queue order. Waits
// for the device's queued work and, on CUDA, for its stream, so GPU spans are resolved.
std::vector<OpRecord> take(Device* device);

// CUDA events on a device's stream (native/runtime/profiler_events.cu; the CPU-only build has no CUDA
// device, so its stub is never reached). mark records one; markUs is its time on the profiler
// clock once the stream has passed it; release returns it to a pool.
void* gpuMark(Device* device);
double gpuMarkUs(Device* device, void* mark);
void gpuRelease(void* mark);

}  // namespace profiler
}  // namespace seqtune
