#include "native/runtime/op_registry.h"

#include <cmath>
#include <cstdlib>

#include "native/runtime/profiler.h"

namespace seqtune {

namespace {
std::map<std::string, OpInfo>& mutableRegistry() {
  static std::map<std::string, OpInfo> registry;
  return registry;
}
}  // namespace

OpRegistrar::OpRegistrar(OpSchema schema, OpBuilder build, bool cuda) {
  std::string name = schema.name;
  mutableRegistry()[name] = OpInfo{std::move(schema), build, cuda};
}

const std::map<std::string, OpInfo>& opRegistry() { return mutableRegistry(); }

const char* attrTypeName(AttrType type) {
  switch (type) {
    case AttrType::kNumber: return "number";
    case AttrType::kInteger: return "integer";
    case AttrType::kFlag: return "boolean";
    case AttrType::kText: return "string";
    case AttrType::kNumbers: return "array of numbers";
  }
  return "?";
}

namespace {
bool isInteger(double d) { return std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740991.0; }

bool matches(const AttrValue& v, AttrType type) {
  switch (type) {
    case AttrType::kNumber: return std::holds_alternative<double>(v);
    case AttrType::kInteger: return std::holds_alternative<double>(v) && isInteger(std::get<double>(v));
    case AttrType::kFlag: return std::holds_alternative<bool>(v);
    case AttrType::kText: return std::holds_alternative<std::string>(v);
    case AttrType::kNumbers: return std::holds_alternative<std::vector<double>>(v);
  }
  return false;
}
}  // namespace

void Attrs::conform(const OpSchema& schema) {
  for (const auto& [key, value] : values_) {
    const AttrSpec* spec = nullptr;
    for (const AttrSpec& s : schema.attrs) {
      if (s.name == key) spec = &s;
    }
    if (!spec) {
      std::string known;
      for (const AttrSpec& s : schema.attrs) known += (known.empty() ? "" : ", ") + s.name;
      fail(code::kArgument, op_, ": unknown attribute '", key, "' (", op_, " takes ", known.empty() ? "none" : known, ")");
    }
    if (!matches(value, spec->type)) {
      fail(code::kArgument, op_, ": attribute '", key, "' must be ", spec->type == AttrType::kInteger ? "an " : "a ",
           attrTypeName(spec->type));
    }
  }
  for (const AttrSpec& s : schema.attrs) {
    if (has(s.name)) continue;
    if (s.fallback) {
      values_[s.name] = *s.fallback;
    } else if (s.required) {
      fail(code::kArgument, op_, ": missing attribute '", s.name, "'");
    }
  }
}

const AttrValue* Attrs::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) fail(code::kArgument, op_, ": missing attribute '", name, "'");
  return &it->second;
}

// conform() checked the types; these read what the schema promised.
double Attrs::number(const std::string& name) const { return std::get<double>(*find(name)); }

int64_t Attrs::integer(const std::string& name) const { return static_cast<int64_t>(std::get<double>(*find(name))); }

bool Attrs::flag(const std::string& name) const { return std::get<bool>(*find(name)); }

std::string Attrs::text(const std::string& name) const { return std::get<std::string>(*find(name)); }

std::vector<double> Attrs::numbers(const std::string& name) const { return std::get<std::vector<double>>(*find(name)); }

namespace {
// How many ops JS may queue ahead of a device before runOp waits (SEQTUNE_MAX_QUEUED_OPS, 0 for
// no bound). Tensors are allocated when their op is queued, so this bounds the memory a JS thread
// running ahead holds; on a GPU the device thread only launches, so it seldom lags this far.
size_t maxQueuedOps() {
  static const size_t limit = [] {
    const char* env = std::getenv("SEQTUNE_MAX_QUEUED_OPS");
    return env && *env ? static_cast<size_t>(std::strtoull(env, nullptr, 10)) : size_t(64);
  }();
  return limit;
}
}  // namespace

std::vector<TensorPtr> runOp(const std::string& name, const std::vector<TensorPtr>& inputs, Attrs attrs) {
  const auto& registry = opRegistry();
  auto it = registry.find(name);
  if (it == registry.end()) fail(code::kArgument, "unknown op '", name, "'");
  const OpInfo& info = it->second;
  attrs.conform(info.schema);

  Device* device = nullptr;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    if (!device) {
      device = inputs[i]->device();
    } else if (inputs[i]->device() != device) {
      fail(code::kDevice, name, ": input ", i, " is ", inputs[i]->describe(), " but input 0 is on ", device->name(),
           "; move tensors to one device first");
    }
  }
  if (!device) device = deviceByName(attrs.has("device") ? attrs.text("device") : "cpu");
  if (device->isCuda() && !info.cuda) {
    fail(code::kNotImplemented, name, " is not implemented on cuda yet (", device->name(),
         "); run it on cpu or use --device cpu");
  }

  OpCall call{info.schema.name.c_str(), device, inputs, std::move(attrs)};
  OpPlan plan = info.build(call);
  size_t declared = 0;
  for (const OutputSpec& o : info.schema.outputs) declared += o.when.empty() || call.attrs.flag(o.when) ? 1 : 0;
  if (plan.outputs.size() != declared) {
    fail(code::kArgument, name, ": internal error: the builder returned ", plan.outputs.size(), " outputs, the schema declares ",
         declared);
  }

  Task task;
  task.op = name;
  for (const auto& t : inputs) {
    if (t) task.reads.push_back(t->storage());
  }
  for (const auto& t : plan.outputs) task.writes.push_back(t->storage());
  for (const auto& t : plan.updated) task.writes.push_back(t->storage());
  task.run = std::move(plan.run);
  if (profiler::enabled()) profiler::instrument(task, device, inputs, plan.outputs);
  device->executor().submit(std::move(task));
  if (const size_t limit = maxQueuedOps()) device->executor().waitQueuedAtMost(limit);
  return plan.outputs;
}

}  // namespace seqtune
