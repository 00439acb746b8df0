// The native side of the op interface (lib/ops.ts documents each op). An op is registered once by
// name with a builder that runs on the JS thread: it checks the inputs and attributes, allocates
// the outputs, and returns the work to queue on the device. Checking here, not in the kernels,
// means a bad call throws before anything is queued and no kernel sees an invalid shape.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "native/runtime/device.h"
#include "kernels/common/errors.h"
#include "native/runtime/tensor.h"

namespace seqtune {

using AttrValue = std::variant<double, bool, std::string, std::vector<double>>;

class Attrs {
 public:
  explicit Attrs(const char* op) : op_(op) {}
  void set(const std::string& name, AttrValue value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  double number(const std::string& name) const;
  double number(const std::string& name, double fallback) const;
  int64_t integer(const std::string& name) const;
  int64_t integer(const std::string& name, int64_t fallback) const;
  bool flag(const std::string& name, bool fallback) const;
  std::string text(const std::string& name, const std::string& fallback) const;
  std::vector<double> numbers(const std::string& name) const;

 private:
  const AttrValue* find(const std::string& name) const;
  const char* op_;
  std::map<std::string, AttrValue> values_;
};

struct OpCall {
  const char* op;
  Device* device;                  // every tensor input is on this device
  std::vector<TensorPtr> inputs;   // null entries for omitted optional inputs
  Attrs attrs;
};

struct OpPlan {
  std::vector<TensorPtr> outputs;  // returned to JS
  std::vector<TensorPtr> updated;  // inputs the op writes in place
  std::function<void()> run;       // device-thread work
};

using OpBuilder = OpPlan (*)(const OpCall& call);

struct OpInfo {
  std::string name;
  OpBuilder build;
  bool cuda;  // has a CUDA implementation in this build
};

const std::map<std::string, OpInfo>& opRegistry();
// Validates, plans and queues the op; returns its outputs (already usable as inputs of later ops).
std::vector<TensorPtr> runOp(const std::string& name, const std::vector<TensorPtr>& inputs, Attrs attrs);

struct OpRegistrar {
  OpRegistrar(const char* name, OpBuilder build, bool cuda);
};

#ifdef SEQTUNE_CUDA
#define SEQTUNE_HAS_CUDA_KERNEL true
#else
#define SEQTUNE_HAS_CUDA_KERNEL false
#endif

// REGISTER_OP(name, builder): the op runs on CPU only for now. REGISTER_OP_CUDA: it also has a
// CUDA kernel when CUDA is compiled in.
#define SEQTUNE_REGISTER(NAME, BUILDER, CUDA) static ::seqtune::OpRegistrar registrar_##BUILDER(NAME, BUILDER, CUDA)
#define REGISTER_OP(NAME, BUILDER) SEQTUNE_REGISTER(NAME, BUILDER, false)
#define REGISTER_OP_CUDA(NAME, BUILDER) SEQTUNE_REGISTER(NAME, BUILDER, SEQTUNE_HAS_CUDA_KERNEL)

}  // namespace seqtune
