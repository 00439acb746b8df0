#include "native/runtime/profiler.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include "native/runtime/device.h"
#include "native/runtime/executor.h"
#include "kernels/common/errors.h"

namespace seqtune::profiler {

std::atomic<bool> enabledFlag{false};

namespace detail {
thread_local std::string* currentKernels = nullptr;

void addKernel(const char* path) {
  std::string& list = *currentKernels;
  // "+"-joined, each path once: "mma+simt"
  for (size_t at = 0; (at = list.find(path, at)) != std::string::npos; ++at) {
    const size_t end = at + std::char_traits<char>::length(path);
    if ((at == 0 || list[at - 1] == '+') && (end == list.size() || list[end] == '+')) return;
  }
  if (!list.empty()) list += '+';
  list += path;
}
}  // namespace detail

namespace {

// An op queued while profiling: filled on the JS thread, completed on the device thread.
struct Pending {
  OpRecord record;
  Device* device = nullptr;
  void* begin = nullptr;  // CUDA marks
  void* end = nullptr;
  std::atomic<bool> done{false};
};

// Records beyond this are not kept (a long SEQTUNE_PROFILE run that never takes them): about
// 300 bytes each, so the cap bounds the profiler's own memory near 300 MB.
constexpr size_t kMaxPending = 1 << 20;

std::mutex mutex;
std::deque<std::shared_ptr<Pending>> pending;

const auto epoch = std::chrono::steady_clock::now();

std::string describe(const std::vector<TensorPtr>& tensors) {
  std::string out;
  for (const TensorPtr& t : tensors) {
    if (!out.empty()) out += ' ';
    out += t ? str(dtypeName(t->dtype()), shapeString(t->shape())) : "-";
  }
  return out;
}

}  // namespace

void setEnabled(bool on) { enabledFlag.store(on, std::memory_order_relaxed); }

double nowUs() { return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - epoch).count(); }

void instrument(Task& task, Device* device, const std::vector<TensorPtr>& inputs, const std::vector<TensorPtr>& outputs) {
  if (!task.run) return;
  auto p = std::make_shared<Pending>();
  p->device = device;
  p->record.op = task.op;
  p->record.device = device->name();
  p->record.inputs = describe(inputs);
  p->record.outputs = describe(outputs);
  p->record.queueDepth = static_cast<int64_t>(device->executor().queued());
  p->record.queuedUs = nowUs();
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (pending.size() >= kMaxPending) return;
    pending.push_back(p);
  }
  task.run = [p, run = std::move(task.run)]() {
    const bool cuda = p->device->isCuda();
    std::string kernels;
    // Closes the record whether run() returns or throws (the executor turns a throw into poison).
    struct Close {
      Pending& p;
      std::string& kernels;
      bool cuda, ok = false;
      ~Close() {
        if (p.begin) {
          try {
            p.end = gpuMark(p.device);
          } catch (const Error&) {  // a broken context: the op's own error is what matters
          }
        }
        p.record.hostEndUs = nowUs();
        p.record.kernels = kernels.empty() ? (cuda ? "simt" : "cpu") : kernels;
        p.record.failed = !ok;
        detail::currentKernels = nullptr;
        p.done.store(true, std::memory_order_release);
      }
    } close{*p, kernels, cuda};
    detail::currentKernels = &kernels;
    p->record.hostBeginUs = nowUs();
    if (cuda) p->begin = gpuMark(p->device);
    run();
    close.ok = true;
  };
}

std::vector<OpRecord> take(Device* device) {
  std::vector<Device*> devices;
  if (device) {
    devices.push_back(device);
  } else {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& p : pending) {
      if (std::find(devices.begin(), devices.end(), p->device) == devices.end()) devices.push_back(p->device);
    }
  }
  for (Device* d : devices) {
    d->executor().drain();
    d->synchronize();
  }
  std::vector<std::shared_ptr<Pending>> mine;
  {
    std::lock_guard<std::mutex> lock(mutex);
    std::deque<std::shared_ptr<Pending>> rest;
    for (auto& p : pending) {
      const bool taken = std::find(devices.begin(), devices.end(), p->device) != devices.end();
      if (taken) {
        mine.push_back(std::move(p));
      } else {
        rest.push_back(std::move(p));
      }
    }
    pending.swap(rest);
  }
  std::vector<OpRecord> out;
  out.reserve(mine.size());
  for (const auto& p : mine) {
    // Not run: an input was poisoned, so the executor skipped it. Nothing to time.
    if (!p->done.load(std::memory_order_acquire)) continue;
    if (p->begin) {
      if (p->end) {
        p->record.gpuBeginUs = gpuMarkUs(p->device, p->begin);
        p->record.gpuEndUs = gpuMarkUs(p->device, p->end);
        gpuRelease(p->end);
      }
      gpuRelease(p->begin);
    }
    out.push_back(std::move(p->record));
  }
  return out;
}

#ifndef SEQTUNE_CUDA
// The CPU-only build has no CUDA device, so instrument() never marks a stream.
void* gpuMark(Device* device) { fail(code::kDevice, "profiler: ", device->name(), " is not a CUDA device"); }
double gpuMarkUs(Device*, void*) { return -1; }
void gpuRelease(void*) {}
#endif

}  // namespace seqtune::profiler
