// What the addon was built with and which devices are usable (seqtune info, devices()).
#include <thread>

#include "bindings/binding.h"
#include "native/runtime/device.h"
#include "kernels/common/errors.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::binding {

namespace {

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    CudaStatus status = cudaStatus();
    Napi::Object out = Napi::Object::New(env);
    out.Set("cudaCompiled", status.compiled);
    out.Set("cudaArchitectures", SEQTUNE_CUDA_ARCHS);
    out.Set("cudaRuntimeVersion", status.runtimeVersion);
    out.Set("cudaDriverVersion", status.driverVersion);
    out.Set("cudaUnusableReason", status.reason);
    out.Set("cpuThreads", cpuThreadCount());
    out.Set("hardwareThreads", static_cast<double>(std::thread::hardware_concurrency()));
    Napi::Array gpus = Napi::Array::New(env, status.gpus.size());
    for (size_t i = 0; i < status.gpus.size(); ++i) {
      const GpuInfo& gpu = status.gpus[i];
      Napi::Object g = Napi::Object::New(env);
      g.Set("index", gpu.index);
      g.Set("name", gpu.name);
      g.Set("totalMemory", static_cast<double>(gpu.totalMemory));
      g.Set("computeCapability", std::to_string(gpu.major) + "." + std::to_string(gpu.minor));
      g.Set("usable", gpu.usable);
      g.Set("reason", gpu.reason);
      // Read now, not cached with the rest: a self-test may have run since the last call.
      Napi::Object kernels = Napi::Object::New(env);
      for (const KernelState& k : hopperKernelStates(gpu.index)) kernels.Set(k.kernel, k.state);
      g.Set("hopperKernels", kernels);
      gpus.Set(i, g);
    }
    out.Set("gpus", gpus);
    return out;
  });
}

// Free bytes on a usable GPU now (devices()' freeMemory; the plan's check before training).
Napi::Value gpuFreeMemoryOf(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) fail(code::kArgument, "gpuFreeMemory(index): index must be a number");
    return Napi::Number::New(info.Env(), static_cast<double>(gpuFreeMemory(info[0].As<Napi::Number>().Int32Value())));
  });
}

}  // namespace

void initDevices(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo));
  exports.Set("gpuFreeMemory", Napi::Function::New(env, gpuFreeMemoryOf));
}

}  // namespace seqtune::binding
