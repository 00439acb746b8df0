// runOp and the queue controls: the whole op surface is one generic entry point, so adding an op
// needs no binding code (lib/ops.ts gives each op its typed signature).
#include "bindings/binding.h"
#include "native/runtime/device.h"
#include "native/runtime/op_registry.h"

namespace seqtune::binding {

namespace {

AttrValue readAttr(const std::string& op, const std::string& key, const Napi::Value& value) {
  if (value.IsNumber()) return value.As<Napi::Number>().DoubleValue();
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  if (value.IsArray() || value.IsTypedArray()) {
    Napi::Object array = value.As<Napi::Object>();
    uint32_t length = value.IsArray() ? value.As<Napi::Array>().Length()
                                      : static_cast<uint32_t>(value.As<Napi::TypedArray>().ElementLength());
    std::vector<double> list;
    list.reserve(length);
    for (uint32_t i = 0; i < length; ++i) {
      Napi::Value item = array.Get(i);
      if (!item.IsNumber()) fail(code::kArgument, op, ": attribute '", key, "' must contain only numbers");
      list.push_back(item.As<Napi::Number>().DoubleValue());
    }
    return list;
  }
  fail(code::kArgument, op, ": attribute '", key, "' has an unsupported type");
}

// runOp(name, inputs: (NativeTensor|null)[], attrs: object) -> NativeTensor[]
Napi::Value runOpBinding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string name = info[0].ToString().Utf8Value();
    if (!info[1].IsArray()) fail(code::kArgument, name, ": inputs must be an array");
    Napi::Array list = info[1].As<Napi::Array>();
    std::vector<TensorPtr> inputs;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value v = list.Get(i);
      if (v.IsNull() || v.IsUndefined()) {
        inputs.push_back(nullptr);
      } else {
        inputs.push_back(unwrapInput(v, name, i));
      }
    }
    const auto& registry = opRegistry();
    auto it = registry.find(name);
    Attrs attrs(it == registry.end() ? "op" : it->second.schema.name.c_str());
    if (info[2].IsObject()) {
      Napi::Object object = info[2].As<Napi::Object>();
      Napi::Array keys = object.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        Napi::Value key = keys.Get(i);
        Napi::Value value = object.Get(key);  // by the key's own value: no string round trip
        if (value.IsUndefined() || value.IsNull()) continue;
        std::string keyText = key.ToString().Utf8Value();
        attrs.set(keyText, readAttr(name, keyText, value));
      }
    }
    std::vector<TensorPtr> outputs = runOp(name, inputs, std::move(attrs));
    Napi::Array out = Napi::Array::New(info.Env(), outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) out.Set(i, wrapTensor(info.Env(), outputs[i]));
    return out;
  });
}

namespace {
Napi::Value attrValue(Napi::Env env, const AttrValue& v) {
  if (const double* d = std::get_if<double>(&v)) return Napi::Number::New(env, *d);
  if (const bool* b = std::get_if<bool>(&v)) return Napi::Boolean::New(env, *b);
  if (const std::string* s = std::get_if<std::string>(&v)) return Napi::String::New(env, *s);
  const auto& list = std::get<std::vector<double>>(v);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) out.Set(i, Napi::Number::New(env, list[i]));
  return out;
}

Napi::Array strings(Napi::Env env, const std::vector<std::string>& list) {
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) out.Set(i, list[i]);
  return out;
}
}  // namespace

// listOps() -> [{name, cuda, inputs, attrs: [{name, type, default?, required}], outputs: [{name, when?}]}]
Napi::Value listOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& [name, op] : opRegistry()) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", name);
    entry.Set("cuda", op.cuda);
    entry.Set("inputs", strings(env, op.schema.inputs));
    Napi::Array attrs = Napi::Array::New(env, op.schema.attrs.size());
    for (size_t a = 0; a < op.schema.attrs.size(); ++a) {
      const AttrSpec& spec = op.schema.attrs[a];
      Napi::Object attr = Napi::Object::New(env);
      attr.Set("name", spec.name);
      attr.Set("type", attrTypeName(spec.type));
      if (spec.fallback) attr.Set("default", attrValue(env, *spec.fallback));
      attr.Set("required", spec.required);
      attrs.Set(a, attr);
    }
    entry.Set("attrs", attrs);
    Napi::Array outputs = Napi::Array::New(env, op.schema.outputs.size());
    for (size_t o = 0; o < op.schema.outputs.size(); ++o) {
      Napi::Object output = Napi::Object::New(env);
      output.Set("name", op.schema.outputs[o].name);
      if (!op.schema.outputs[o].when.empty()) output.Set("when", op.schema.outputs[o].when);
      outputs.Set(o, output);
    }
    entry.Set("outputs", outputs);
    out.Set(i++, entry);
  }
  return out;
}

// sync(device) -> Promise<void>: resolves when all queued work has run; rejects with the first
// error since the previous sync.
Napi::Value syncBinding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* device = deviceByName(info[0].ToString().Utf8Value());
    auto deferred = std::make_shared<Napi::Promise::Deferred>(info.Env());
    beginPending(info.Env());
    Task task;
    task.op = "sync";
    task.finish = [device, deferred](std::shared_ptr<const Poison>) {
      std::shared_ptr<const Poison> error;
      try {
        device->synchronize();
      } catch (const Error& e) {
        error = std::make_shared<Poison>(Poison{e.code(), e.what()});
      }
      if (!error) error = device->executor().takeError();
      postToMain([deferred, error](Napi::Env env) {
        if (error) {
          deferred->Reject(makeError(env, error->code, error->message).Value());
        } else {
          deferred->Resolve(env.Undefined());
        }
      });
    };
    device->executor().submit(std::move(task));
    return deferred->Promise();
  });
}

Napi::Value memoryStatsBinding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* device = deviceByName(info[0].ToString().Utf8Value());
    if (info.Length() > 1 && info[1].ToBoolean()) device->resetPeak();
    MemoryStats stats = device->memoryStats();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("bytesInUse", static_cast<double>(stats.bytesInUse));
    out.Set("peakBytes", static_cast<double>(stats.peakBytes));
    out.Set("bytesReserved", static_cast<double>(stats.bytesReserved));
    return out;
  });
}

}  // namespace

void initOps(Napi::Env env, Napi::Object exports) {
  exports.Set("runOp", Napi::Function::New(env, runOpBinding));
  exports.Set("listOps", Napi::Function::New(env, listOps));
  exports.Set("sync", Napi::Function::New(env, syncBinding));
  exports.Set("memoryStats", Napi::Function::New(env, memoryStatsBinding));
}

}  // namespace seqtune::binding
