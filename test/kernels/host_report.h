// The "ok <check>" / "FAIL <check>: <error>" lines every host check prints (host-check.ts reads
// them), and the failure count its exit status comes from.
#pragma once
#include <cstdio>
#include <string>

namespace host_report {

inline int failures = 0;

// error "": the check passed.
inline void report(const std::string& check, const std::string& error) {
  if (error.empty()) {
    std::printf("ok %s\n", check.c_str());
  } else {
    ++failures;
    std::printf("FAIL %s: %s\n", check.c_str(), error.c_str());
  }
}

}  // namespace host_report
