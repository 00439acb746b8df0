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

OpRegistrar::OpRegistrar(const char* name, OpBuilder build, bool cuda) {
  mutableRegistry()[name] = OpInfo{name, build, cuda};
}

const std::map<std::string, OpInfo>& opRegistry() { return mutableRegistry(); }

const AttrValue* Attrs::find(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

double Attrs::number(const std::string& name) const {
  const AttrValue* v = find(name);
  if (!v) fail(code::kArgument, op_, ": missing attribute '", name, "'");
  if (const double* d = std::get_if<double>(v)) return *d;
  if (const bool* b = std::get_if<bool>(v)) return *b ? 1.0 : 0.0;
  fail(code::kArgument, op_, ": attribute '", name, "' must be a number");
}

double Attrs::number(const std::string& name, double fallback) const {
  return has(name) ? number(name) : fallback;
}

int64_t Attrs::integer(const std::string& name) const {
  double d = number(name);
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740991.0) {
    fail(code::kArgument, op_, ": attribute '", name, "' must be an integer, got ", d);
  }
  return static_cast<int64_t>(d);
}

int64_t Attrs::integer(const std::string& name, int64_t fallback) const {
  return has(name) ? integer(name) : fallback;
}

bool Attrs::flag(const std::string& name, bool fallback) const {
  const AttrValue* v = find(name);
  if (!v) return fallback;
  if (const bool* b = std::get_if<bool>(v)) return *b;
  if (const double* d = std::get_if<double>(v)) return *d != 0;
  fail(code::kArgument, op_, ": attribute '", name, "' must be a boolean");
}

std::string Attrs::text(const std::string& name, const std::string& fallback) const {
  const AttrValue* v = find(name);
  if (!v) return fallback;
  if (const std::string* s = std::get_if<std::string>(v)) return *s;
  fail(code::kArgument, op_, ": attribute '", name, "' must be a string");
}

std::vector<double> Attrs::numbers(const std::string& name) const {
  const AttrValue* v = find(name);
  if (!v) return {};
  if (const auto* list = std::get_if<std::vector<double>>(v)) return *list;
  fail(code::kArgument, op_, ": attribute '", name, "' must be an array of numbers");
}

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
  if (!device) device = deviceByName(attrs.text("device", "cpu"));
  if (device->isCuda() && !info.cuda) {
    fail(code::kNotImplemented, name, " is not implemented on cuda yet (", device->name(),
         "); run it on cpu or use --device cpu");
  }

  OpCall call{info.name.c_str(), device, inputs, std::move(attrs)};
  OpPlan plan = info.build(call);

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
