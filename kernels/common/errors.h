// Errors thrown by the runtime and the ops. The binding turns each into a JS SeqtuneError
// carrying `code`, so nothing reachable from JS aborts the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace seqtune {

// Codes shared with lib/errors.ts.
namespace code {
constexpr const char* kShape = "ERR_SHAPE";
constexpr const char* kDtype = "ERR_DTYPE";
constexpr const char* kDevice = "ERR_DEVICE";
constexpr const char* kDisposed = "ERR_DISPOSED";
constexpr const char* kIndex = "ERR_INDEX";
constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";
constexpr const char* kArgument = "ERR_ARGUMENT";
constexpr const char* kNotImplemented = "ERR_NOT_IMPLEMENTED";
constexpr const char* kCuda = "ERR_CUDA";
constexpr const char* kNonFinite = "ERR_NON_FINITE";
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <typename... Parts>
[[noreturn]] void fail(const char* errorCode, const Parts&... parts) {
  throw Error(errorCode, str(parts...));
}

}  // namespace seqtune
