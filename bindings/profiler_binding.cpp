// The profiler's switch and its records (native/runtime/profiler.h; lib/profiler.ts uses them).
#include "bindings/binding.h"
#include "native/runtime/device.h"
#include "native/runtime/profiler.h"

namespace seqtune::binding {

namespace {

// profilerEnable(on: boolean): ops queued from now on are (or are no longer) timed.
Napi::Value enable(const Napi::CallbackInfo& info) {
  profiler::setEnabled(info[0].ToBoolean());
  return info.Env().Undefined();
}

// profilerNow() -> microseconds on the profiler's clock (the records' clock).
Napi::Value now(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), profiler::nowUs()); }

// profilerTake(device?) -> records of that device (of all without one): waits for its queued work
// (call it after awaiting a sync, where nothing is left to wait for), returns and forgets them.
Napi::Value take(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* device = info[0].IsString() ? deviceByName(info[0].As<Napi::String>().Utf8Value()) : nullptr;
    const std::vector<profiler::OpRecord> records = profiler::take(device);
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env, records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      const profiler::OpRecord& r = records[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("op", r.op);
      o.Set("device", r.device);
      o.Set("inputs", r.inputs);
      o.Set("outputs", r.outputs);
      o.Set("kernels", r.kernels);
      o.Set("queueDepth", static_cast<double>(r.queueDepth));
      o.Set("queuedUs", r.queuedUs);
      o.Set("hostBeginUs", r.hostBeginUs);
      o.Set("hostEndUs", r.hostEndUs);
      if (r.gpuBeginUs >= 0) {
        o.Set("gpuBeginUs", r.gpuBeginUs);
        o.Set("gpuEndUs", r.gpuEndUs);
      }
      o.Set("failed", r.failed);
      out.Set(i, o);
    }
    return out;
  });
}

}  // namespace

void initProfiler(Napi::Env env, Napi::Object exports) {
  exports.Set("profilerEnable", Napi::Function::New(env, enable));
  exports.Set("profilerNow", Napi::Function::New(env, now));
  exports.Set("profilerTake", Napi::Function::New(env, take));
}

}  // namespace seqtune::binding
