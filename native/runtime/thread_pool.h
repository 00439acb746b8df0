// The CPU backend's worker threads. Work is split into contiguous, statically assigned ranges, and
// every kernel keeps each output element's reduction inside one range, so results do not depend on
// the number of threads (SEQTUNE_NUM_THREADS, default: all cores).
#pragma once
#include <cstdint>
#include <functional>

namespace seqtune {

int cpuThreadCount();

// Calls fn(begin, end) over [0, n) split into at most cpuThreadCount() ranges of at least `grain`
// items; returns when all have run. Exceptions from any range are rethrown (the first one).
// Must not be called from inside another parallelFor.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace seqtune
