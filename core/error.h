// core/error.h — stereort::Error and the check macros.
//   Library code throws; only apps/ catches and exits. Every message names where (file:line, function), what (the
//   op, the shapes) and, where we can tell, the fix.
//   STEREORT_CHECK(cond, fmt, args...)   argument checks (fmt-formatted message; include "core/check.h")
//   STEREORT_CUDA_CHECK(stmt)            any cudaError_t-returning call
//   STEREORT_CUBLAS_CHECK(stmt)          any cublasStatus_t-returning call
//   STEREORT_CUDNN_CHECK(stmt)           any cudnnStatus_t-returning call
//   STEREORT_LAUNCH_CHECK(name)          after every kernel launch: cudaGetLastError, and with STEREORT_SYNC_CHECK=1
//                                        in the environment (or set_sync_check(true)) a synchronise that pins an
//                                        asynchronous fault on the launch that caused it.
// This header has no fmt and no CUDA includes, so nvcc-compiled files can use it cheaply.
#pragma once
#include <stdexcept>
#include <string>

namespace stereort {

class Error : public std::runtime_error {
 public:
  Error(std::string msg, const char* file, int line, const char* func);
  const std::string& message() const { return msg_; }  // the message without the location
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  std::string msg_;
  const char* file_;
  int line_;
};

[[noreturn]] void throw_error(const char* file, int line, const char* func, const std::string& msg);

// Synchronise after every launch (debug switch). Initialised from STEREORT_SYNC_CHECK in the environment.
bool sync_check_enabled();
void set_sync_check(bool on);

// Implemented in cuda/host (CUDA builds); they build the message and throw. `code` is the library's status value.
[[noreturn]] void throw_cuda_error(int code, const char* stmt, const char* file, int line, const char* func);
[[noreturn]] void throw_cublas_error(int code, const char* stmt, const char* file, int line, const char* func);
[[noreturn]] void throw_cudnn_error(int code, const char* stmt, const char* file, int line, const char* func);
void launch_check(const char* kernel, const char* file, int line, const char* func);

// A CPU-only build reaches this when asked for CUDA work.
[[noreturn]] void throw_built_without_cuda(const char* what, const char* file, int line);

}  // namespace stereort

#define STEREORT_THROW(msg) ::stereort::throw_error(__FILE__, __LINE__, __func__, (msg))

#define STEREORT_CUDA_CHECK(stmt)                                                                      \
  do {                                                                                                 \
    auto stereort_status_ = (stmt);                                                                    \
    if (stereort_status_ != 0)                                                                         \
      ::stereort::throw_cuda_error(int(stereort_status_), #stmt, __FILE__, __LINE__, __func__);         \
  } while (0)
#define STEREORT_CUBLAS_CHECK(stmt)                                                                    \
  do {                                                                                                 \
    auto stereort_status_ = (stmt);                                                                    \
    if (int(stereort_status_) != 0)                                                                    \
      ::stereort::throw_cublas_error(int(stereort_status_), #stmt, __FILE__, __LINE__, __func__);       \
  } while (0)
#define STEREORT_CUDNN_CHECK(stmt)                                                                     \
  do {                                                                                                 \
    auto stereort_status_ = (stmt);                                                                    \
    if (int(stereort_status_) != 0)                                                                    \
      ::stereort::throw_cudnn_error(int(stereort_status_), #stmt, __FILE__, __LINE__, __func__);        \
  } while (0)
#define STEREORT_LAUNCH_CHECK(name) ::stereort::launch_check((name), __FILE__, __LINE__, __func__)

// In ops/: run a CUDA launcher when this build has CUDA, else throw a clear error. The `#if` stays here, at the
// CUDA boundary, instead of in every op.
#if STEREORT_WITH_CUDA
#define STEREORT_CUDA_PATH(...) __VA_ARGS__
#else
#define STEREORT_CUDA_PATH(...) ::stereort::throw_built_without_cuda(__func__, __FILE__, __LINE__)
#endif
