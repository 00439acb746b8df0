// The native side of the op interface (lib/ops.ts documents each op). An op is registered once by
// name with a builder that runs on the JS thread: it checks the inputs and attributes, allocates
// the outputs, and returns the work to queue on the device. Checking here, not in the kernels,
// means a bad call throws before anything is queued and no kernel sees an invalid shape.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "native/runtime/device.h"
#include "kernels/common/errors.h"
#include "native/runtime/tensor.h"

namespace seqtune {

using AttrValue = std::variant<double, bool, std::string, std::vector<double>>;

// An op's declaration, written once next to its builder: the inputs (documentation; "name?" is
// optional, "name..." a list), the attributes with their types and defaults, and the outputs in
// order. runOp rejects an attribute the op does not declare or one of the wrong type, fills in the
// defaults, and checks the builder returned the declared outputs. listOps() hands the schema to
// lib/ops.ts, which names the outputs from it.
enum class AttrType { kNumber, kInteger, kFlag, kText, kNumbers };

struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<AttrValue> fallback;  // the default; none: see `required`
  bool required;                      // no default: missing is an error (else simply absent)
};

namespace attr {
inline AttrSpec number(const char* name, double fallback) { return {name, AttrType::kNumber, fallback, false}; }
inline AttrSpec number(const char* name) { return {name, AttrType::kNumber, std::nullopt, true}; }
inline AttrSpec optionalNumber(const char* name) { return {name, AttrType::kNumber, std::nullopt, false}; }
inline AttrSpec integer(const char* name, double fallback) { return {name, AttrType::kInteger, fallback, false}; }
inline AttrSpec integer(const char* name) { return {name, AttrType::kInteger, std::nullopt, true}; }
inline AttrSpec flag(const char* name, bool fallback) { return {name, AttrType::kFlag, fallback, false}; }
inline AttrSpec text(const char* name, const char* fallback) { return {name, AttrType::kText, std::string(fallback), false}; }
inline AttrSpec text(const char* name) { return {name, AttrType::kText, std::nullopt, true}; }
inline AttrSpec numbers(const char* name) { return {name, AttrType::kNumbers, std::vector<double>{}, false}; }
}  // namespace attr

// An output, present only when flag attribute `when` is true if `when` is set (e.g. dbias/needBias).
struct OutputSpec {
  OutputSpec(const char* name, const char* when = "") : name(name), when(when) {}
  std::string name, when;
};

struct OpSchema {
  std::string name;
  std::vector<std::string> inputs;
  std::vector<AttrSpec> attrs;
  std::vector<OutputSpec> outputs;
};

const char* attrTypeName(AttrType type);

// The attributes of one call, checked against the op's schema (so every declared one with a
// default is present). Accessors fail naming the op and the key.
class Attrs {
 public:
  explicit Attrs(const char* op) : op_(op) {}
  void set(const std::string& name, AttrValue value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  double number(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool flag(const std::string& name) const;
  std::string text(const std::string& name) const;
  std::vector<double> numbers(const std::string& name) const;
  // Rejects keys the schema does not declare and values of the wrong type; adds the defaults.
  void conform(const OpSchema& schema);

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
  OpSchema schema;
  OpBuilder build;
  bool cuda;  // has a CUDA implementation in this build
};

const std::map<std::string, OpInfo>& opRegistry();
// Validates, plans and queues the op; returns its outputs (already usable as inputs of later ops).
std::vector<TensorPtr> runOp(const std::string& name, const std::vector<TensorPtr>& inputs, Attrs attrs);

struct OpRegistrar {
  OpRegistrar(OpSchema schema, OpBuilder build, bool cuda);
};

#ifdef SEQTUNE_CUDA
#define SEQTUNE_HAS_CUDA_KERNEL true
#else
#define SEQTUNE_HAS_CUDA_KERNEL false
#endif

// REGISTER_OP(builder, schema): the op, with a CUDA implementation when CUDA is compiled in.
#define REGISTER_OP(BUILDER, ...) \
  static ::seqtune::OpRegistrar registrar_##BUILDER(::seqtune::OpSchema __VA_ARGS__, BUILDER, SEQTUNE_HAS_CUDA_KERNEL)

}  // namespace seqtune
