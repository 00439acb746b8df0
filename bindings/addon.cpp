// Module entry: the error class, the JS-thread hand-off, and each binding file's exports.
#include <atomic>

#include "bindings/binding.h"
#include "kernels/common/errors.h"

namespace seqtune::binding {

namespace {

struct AddonState {
  Napi::FunctionReference errorClass;
  Napi::ThreadSafeFunction mainThread;
  int pending = 0;
};

AddonState* state = nullptr;  // one per process: the addon is loaded by the main thread's env

using MainFn = std::function<void(Napi::Env)>;

void runOnMain(Napi::Env env, Napi::Function, MainFn* fn) {
  if (env != nullptr) {
    try {
      (*fn)(env);
    } catch (const Napi::Error& e) {
      // A throwing resolver must not take the process down; surface it as an uncaught error.
      e.ThrowAsJavaScriptException();
    }
    if (state && --state->pending == 0) state->mainThread.Unref(env);
  }
  delete fn;
}

Napi::Value setErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  state->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message) {
  if (state && !state->errorClass.IsEmpty()) {
    Napi::Object error = state->errorClass.New({Napi::String::New(env, message), Napi::String::New(env, code)});
    return Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw makeError(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw makeError(env, code::kOutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    throw makeError(env, "ERR_INTERNAL", e.what());
  }
}

void beginPending(Napi::Env env) {
  if (state->pending++ == 0) state->mainThread.Ref(env);
}

void postToMain(MainFn fn) {
  auto* data = new MainFn(std::move(fn));
  if (!state || state->mainThread.BlockingCall(data, runOnMain) != napi_ok) delete data;
}

}  // namespace seqtune::binding

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace seqtune::binding;
  state = new AddonState();
  state->mainThread = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                                    "seqtune-device-results", 0, 1);
  state->mainThread.Unref(env);
  env.AddCleanupHook([] {
    state->mainThread.Release();
  });
  exports.Set("setErrorClass", Napi::Function::New(env, setErrorClass));
  initTensor(env, exports);
  initOps(env, exports);
  initDevices(env, exports);
  initProfiler(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(seqtune, Init)
