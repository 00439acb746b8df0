// One in-order work queue per device, run by its own thread: JS enqueues ops and returns at once
// (shapes and arguments are checked synchronously), and only a read-back is awaited. This is the
// CUDA stream model applied to both backends, so the event loop never blocks on compute and a GPU
// step is launched without a thread hop per op.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "native/runtime/tensor.h"

namespace seqtune {

struct Task {
  std::string op;
  std::vector<std::shared_ptr<Storage>> reads;
  std::vector<std::shared_ptr<Storage>> writes;
  // Runs on the device thread. Not called when a read tensor is poisoned: the poison moves on to
  // the written tensors instead. Errors it throws poison the written tensors.
  std::function<void()> run;
  // Always called on the device thread after `run` (or instead of it), with the poison if any.
  // Used by read-backs, which must answer even when their input is invalid.
  std::function<void(std::shared_ptr<const Poison>)> finish;
};

class Executor {
 public:
  explicit Executor(std::string name);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void submit(Task task);
  // Blocks the calling thread until every queued task has run (used at shutdown and by tests of
  // the native layer; JS code awaits read-backs instead).
  void drain();
  // Tasks submitted and not yet finished (the one running included).
  size_t queued();
  // Blocks the calling thread while more than `limit` tasks are queued: bounds how far the JS
  // thread runs ahead of the device, and so the memory of tensors allocated for queued ops.
  void waitQueuedAtMost(size_t limit);
  // The first error since the last call, cleared by the call.
  std::shared_ptr<const Poison> takeError();
  // Called on the device thread before the first task (e.g. to bind the CUDA device).
  void setThreadInit(std::function<void()> init);

 private:
  void loop();
  void execute(Task& task);

  std::string name_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::condition_variable progress_;  // a task finished
  bool waiting_ = false;              // someone waits on progress_
  std::deque<Task> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::shared_ptr<const Poison> firstError_;
  std::function<void()> threadInit_;
  std::thread thread_;
};

}  // namespace seqtune
