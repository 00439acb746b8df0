#include "native/runtime/executor.h"

#include "kernels/common/errors.h"

namespace seqtune {

Executor::Executor(std::string name) : name_(std::move(name)) {}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Executor::setThreadInit(std::function<void()> init) { threadInit_ = std::move(init); }

void Executor::submit(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void Executor::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void Executor::waitQueuedAtMost(size_t limit) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (queue_.size() + (busy_ ? 1 : 0) > limit && !stop_) {
    waiting_ = true;
    progress_.wait(lock);
  }
}

size_t Executor::queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size() + (busy_ ? 1 : 0);
}

std::shared_ptr<const Poison> Executor::takeError() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto error = firstError_;
  firstError_.reset();
  return error;
}

void Executor::loop() {
  if (threadInit_) {
    try {
      threadInit_();
    } catch (...) {
    }
  }
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left
      if (stop_) {
        queue_.clear();
        idle_.notify_all();
        return;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    execute(task);
    task = Task();  // release storage references before reporting idle
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
      if (waiting_) {
        waiting_ = false;
        progress_.notify_all();
      }
    }
  }
}

void Executor::execute(Task& task) {
  std::shared_ptr<const Poison> poison;
  for (const auto& storage : task.reads) {
    if ((poison = storage->poison())) break;
  }
  if (!poison && task.run) {
    try {
      task.run();
    } catch (const Error& e) {
      poison = std::make_shared<Poison>(Poison{e.code(), e.what()});
    } catch (const std::bad_alloc&) {
      poison = std::make_shared<Poison>(Poison{code::kOutOfMemory, str(task.op, ": out of host memory")});
    } catch (const std::exception& e) {
      poison = std::make_shared<Poison>(Poison{"ERR_INTERNAL", str(task.op, ": ", e.what())});
    }
    if (poison) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!firstError_) firstError_ = poison;
    }
  }
  for (const auto& storage : task.writes) storage->setPoison(poison);
  if (task.finish) task.finish(poison);
}

}  // namespace seqtune
