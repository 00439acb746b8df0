// NativeTensor: the JS handle of a native tensor. lib/tensor.ts wraps it in the typed Tensor class.
#include <cstdlib>
#include <cstring>

#include "bindings/binding.h"
#include "native/runtime/device.h"
#include "kernels/common/errors.h"

namespace seqtune::binding {

namespace {

Shape readShape(const Napi::Value& value) {
  if (!value.IsArray()) fail(code::kShape, "shape must be an array of non-negative integers");
  Napi::Array array = value.As<Napi::Array>();
  Shape shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d))) {
      fail(code::kShape, "shape must be an array of non-negative integers, got element ", i, " = ",
           v.ToString().Utf8Value());
    }
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

DType readDtype(const Napi::Value& value) {
  DType dtype;
  std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (!parseDtype(name, &dtype)) fail(code::kDtype, "unknown dtype '", name, "': expected f32, bf16, f16, i32 or f64");
  return dtype;
}


class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::FunctionReference constructor;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(
        env, "NativeTensor",
        {InstanceAccessor<&NativeTensor::shape>("shape"), InstanceAccessor<&NativeTensor::dtype>("dtype"),
         InstanceAccessor<&NativeTensor::device>("device"), InstanceAccessor<&NativeTensor::disposed>("disposed"),
         InstanceMethod<&NativeTensor::dispose>("dispose"), InstanceMethod<&NativeTensor::toHost>("toHost"),
         InstanceMethod<&NativeTensor::view>("view")});
    constructor = Napi::Persistent(cls);
    exports.Set("NativeTensor", cls);
  }

  explicit NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {}
  ~NativeTensor() override { release(); }

  // Host tensors that own their storage report its bytes to V8, so the GC sees the memory that
  // JS handles keep alive (views report nothing: they share their base's storage).
  void attach(Napi::Env env, TensorPtr tensor, bool owner) {
    tensor_ = std::move(tensor);
    env_ = env;
    if (owner && !tensor_->device()->isCuda()) {
      reportedBytes_ = static_cast<int64_t>(tensor_->storage()->bytes());
      Napi::MemoryManagement::AdjustExternalMemory(env, reportedBytes_);
    }
  }

  const TensorPtr& tensor(const char* what) const {
    if (!tensor_) fail(code::kDisposed, what, " was disposed and cannot be used");
    return tensor_;
  }
  bool disposed() const { return !tensor_; }

 private:
  void release() {
    if (reportedBytes_) {
      Napi::MemoryManagement::AdjustExternalMemory(env_, -reportedBytes_);
      reportedBytes_ = 0;
    }
    tensor_.reset();
  }

  Napi::Value shape(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const TensorPtr& t = tensor("tensor");
      Napi::Array out = Napi::Array::New(info.Env(), t->shape().size());
      for (size_t i = 0; i < t->shape().size(); ++i) out.Set(i, Napi::Number::New(info.Env(), t->shape()[i]));
      return out;
    });
  }
  Napi::Value dtype(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtypeName(tensor("tensor")->dtype())); });
  }
  Napi::Value device(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), tensor("tensor")->device()->name()); });
  }
  Napi::Value disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_); }
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  // Resolves with an ArrayBuffer of the tensor's bytes once every op queued before it has run;
  // rejects with the original error when the tensor could not be computed.
  Napi::Value toHost(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      TensorPtr t = tensor("tensor");
      auto deferred = std::make_shared<Napi::Promise::Deferred>(info.Env());
      beginPending(info.Env());
      Task task;
      task.op = "toHost";
      task.reads.push_back(t->storage());
      task.finish = [t, deferred](std::shared_ptr<const Poison> poison) {
        void* buffer = nullptr;
        std::string failure;
        std::string failureCode = code::kOutOfMemory;
        if (poison) {
          failure = poison->message;
          failureCode = poison->code;
        } else {
          buffer = std::malloc(t->nbytes() == 0 ? 1 : t->nbytes());
          if (!buffer) {
            failure = str("out of host memory reading back ", t->describe());
          } else {
            try {
              t->device()->copyToHost(buffer, t->raw(), t->nbytes());
            } catch (const Error& e) {
              std::free(buffer);
              buffer = nullptr;
              failure = e.what();
              failureCode = e.code();
            }
          }
        }
        size_t bytes = t->nbytes();
        postToMain([deferred, buffer, bytes, failure, failureCode](Napi::Env env) {
          if (!buffer) {
            deferred->Reject(makeError(env, failureCode, failure).Value());
            return;
          }
          Napi::ArrayBuffer out = Napi::ArrayBuffer::New(
              env, buffer, bytes, [](Napi::Env, void* data) { std::free(data); });
          deferred->Resolve(out);
        });
      };
      t->device()->executor().submit(std::move(task));
      return deferred->Promise();
    });
  }

  // view(shape, elementOffset = 0): a tensor sharing this one's storage (reshape, or a contiguous
  // slice when elementOffset + numel(shape) stays inside this tensor).
  Napi::Value view(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const TensorPtr& t = tensor("tensor");
      Shape shape = readShape(info[0]);
      double offset = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
      int64_t numel = shapeNumel(shape);
      if (offset < 0 || offset != static_cast<double>(static_cast<int64_t>(offset)) ||
          static_cast<int64_t>(offset) + numel > t->numel()) {
        fail(code::kShape, "view ", shapeString(shape), " at element offset ", offset, " does not fit in ",
             t->describe());
      }
      auto out = std::make_shared<Tensor>(t->storage(), t->byteOffset() + static_cast<size_t>(offset) * dtypeSize(t->dtype()),
                                          shape, t->dtype());
      return wrapTensor(info.Env(), out, false);
    });
  }

  TensorPtr tensor_;
  napi_env env_ = nullptr;
  int64_t reportedBytes_ = 0;
};

Napi::FunctionReference NativeTensor::constructor;

// fromHost(device, dtype, shape, typedArray | null): a new tensor holding a copy of the data
// (zero-filled when data is null).
Napi::Value fromHost(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* device = deviceByName(info[0].ToString().Utf8Value());
    DType dtype = readDtype(info[1]);
    Shape shape = readShape(info[2]);
    TensorPtr tensor = Tensor::empty(device, shape, dtype);
    std::shared_ptr<std::vector<char>> staged;
    if (info[3].IsTypedArray()) {
      Napi::TypedArray array = info[3].As<Napi::TypedArray>();
      size_t bytes = array.ByteLength();
      if (bytes != tensor->nbytes()) {
        fail(code::kShape, "data has ", bytes, " bytes but ", tensor->describe(), " needs ", tensor->nbytes());
      }
      const char* src = static_cast<const char*>(array.ArrayBuffer().Data()) + array.ByteOffset();
      staged = std::make_shared<std::vector<char>>(src, src + bytes);
    } else if (!info[3].IsNull() && !info[3].IsUndefined()) {
      fail(code::kArgument, "data must be a TypedArray or null");
    }
    Task task;
    task.op = "fromHost";
    task.writes.push_back(tensor->storage());
    task.run = [tensor, staged] {
      if (staged) {
        tensor->device()->copyFromHost(tensor->raw(), staged->data(), staged->size());
      } else if (!tensor->device()->isCuda()) {
        std::memset(tensor->raw(), 0, tensor->nbytes());
      } else {
        std::vector<char> zeros(tensor->nbytes(), 0);
        tensor->device()->copyFromHost(tensor->raw(), zeros.data(), zeros.size());
      }
    };
    device->executor().submit(std::move(task));
    return wrapTensor(info.Env(), tensor);
  });
}

}  // namespace

TensorPtr unwrapTensor(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(NativeTensor::constructor.Value())) {
    fail(code::kArgument, what, " is not a tensor");
  }
  return NativeTensor::Unwrap(value.As<Napi::Object>())->tensor(what);
}

TensorPtr unwrapInput(const Napi::Value& value, const std::string& op, uint32_t index) {
  if (value.IsObject() && value.As<Napi::Object>().InstanceOf(NativeTensor::constructor.Value())) {
    const NativeTensor* handle = NativeTensor::Unwrap(value.As<Napi::Object>());
    if (!handle->disposed()) return handle->tensor("");
  }
  return unwrapTensor(value, str(op, ": input ", index).c_str());  // throws, naming the input
}

Napi::Value wrapTensor(Napi::Env env, TensorPtr tensor, bool owner) {
  Napi::Object object = NativeTensor::constructor.New({});
  NativeTensor::Unwrap(object)->attach(env, std::move(tensor), owner);
  return object;
}

void initTensor(Napi::Env env, Napi::Object exports) {
  NativeTensor::Init(env, exports);
  exports.Set("fromHost", Napi::Function::New(env, fromHost));
}

}  // namespace seqtune::binding
