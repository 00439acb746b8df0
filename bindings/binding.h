// Shared N-API glue: native errors become JS SeqtuneError objects, and device threads hand results
// back to the JS thread through one thread-safe function.
#pragma once
#include <napi.h>

#include <functional>

#include "native/runtime/tensor.h"

namespace seqtune::binding {

// Builds a JS SeqtuneError (the class lib/errors.ts registers at load) with .code.
Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message);

// Runs `body`, turning any C++ exception into a thrown JS SeqtuneError.
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);

// Device-thread side: queue `fn` to run on the JS thread. beginPending() must have been called
// on the JS thread for each such post, so the event loop stays alive until it arrives.
void postToMain(std::function<void(Napi::Env)> fn);
void beginPending(Napi::Env env);

// Registration of each binding file's exports.
void initTensor(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initDevices(Napi::Env env, Napi::Object exports);
void initProfiler(Napi::Env env, Napi::Object exports);

// JS tensor handle <-> native tensor.
TensorPtr unwrapTensor(const Napi::Value& value, const char* what);
// The same for runOp's inputs, named "<op>: input <index>" in errors: the name is built only on
// failure (formatting it for every input cost more than the rest of the call).
TensorPtr unwrapInput(const Napi::Value& value, const std::string& op, uint32_t index);
// owner: the handle owns fresh storage (false for views of another tensor).
Napi::Value wrapTensor(Napi::Env env, TensorPtr tensor, bool owner = true);

}  // namespace seqtune::binding
