#include "native/cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

// dtable[v] = Σ dout[t] over the tokens t with id v, summed in token order. Tokens are grouped by
// id with a stable sort and each distinct id's row is owned by one range, so the result does not
// depend on the thread count; untouched rows stay zero.
template <typename T>
void scatterAdd(const Tensor& dout, const Tensor& ids, const Tensor& dtable) {
  const int64_t tokens = ids.numel(), cols = dout.dim(1);
  const int32_t* id = ids.data<int32_t>();
  std::vector<int64_t> order(static_cast<size_t>(tokens));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return id[a] < id[b]; });
  std::vector<int64_t> groupStart;  // offsets into `order` where a new id begins, plus the end
  for (int64_t i = 0; i < tokens; ++i) {
    if (i == 0 || id[order[i]] != id[order[i - 1]]) groupStart.push_back(i);
  }
  groupStart.push_back(tokens);
  std::memset(dtable.raw(), 0, dtable.nbytes());
  HostIn<T> g(dout);
  const size_t rowBytes = static_cast<size_t>(cols) * dtypeSize(dtable.dtype());
  char* dst = static_cast<char*>(dtable.raw());
  const int64_t groups = static_cast<int64_t>(groupStart.size()) - 1;
  parallelFor(groups, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(cols, 1)), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(static_cast<size_t>(cols));
    for (int64_t k = begin; k < end; ++k) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t i = groupStart[k]; i < groupStart[k + 1]; ++i) {
        const T* row = g.data() + order[i] * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += row[c];
      }
      convertTo<T>(dtable.dtype(), acc.data(), dst + static_cast<size_t>(id[order[groupStart[k]]]) * rowBytes, cols);
    }
  });
}

}  // namespace

void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) {
  const size_t rowBytes = static_cast<size_t>(table.dim(1)) * dtypeSize(table.dtype());
  const int32_t* id = ids.data<int32_t>();
  const char* src = static_cast<const char*>(table.raw());
  char* dst = static_cast<char*>(out.raw());
  parallelFor(ids.numel(), std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(rowBytes, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t t = begin; t < end; ++t) {
                  std::memcpy(dst + t * rowBytes, src + static_cast<size_t>(id[t]) * rowBytes, rowBytes);
                }
              });
}

void embeddingBackward(const Tensor& dout, const Tensor& ids, const Tensor& dtable) {
  withComputeType(dout.dtype(), [&](auto zero) { scatterAdd<decltype(zero)>(dout, ids, dtable); });
}

}  // namespace seqtune::cpu
