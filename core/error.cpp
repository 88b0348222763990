// core/error.cpp — stereort::Error, the sync-check switch, and CPU-build fallbacks of the CUDA error helpers.
#include "core/error.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace stereort {

static std::string basename_of(const char* file) {
  const char* s = std::strrchr(file, '/');
  return s ? s + 1 : file;
}

Error::Error(std::string msg, const char* file, int line, const char* func)
    : std::runtime_error(msg + " [" + basename_of(file) + ":" + std::to_string(line) + " in " + func + "]"),
      msg_(std::move(msg)), file_(file), line_(line) {}

void throw_error(const char* file, int line, const char* func, const std::string& msg) {
  throw Error(msg, file, line, func);
}

static std::atomic<int> g_sync_check{-1};
bool sync_check_enabled() {
  int v = g_sync_check.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv("STEREORT_SYNC_CHECK");
    v = (env && env[0] && std::strcmp(env, "0") != 0) ? 1 : 0;
    g_sync_check.store(v);
  }
  return v == 1;
}
void set_sync_check(bool on) { g_sync_check.store(on ? 1 : 0); }

void throw_built_without_cuda(const char* what, const char* file, int line) {
  throw Error(std::string(what) + ": this stereort was built without CUDA; rebuild with nvcc available "
              "(cmake -DSTEREORT_CUDA=ON) or run on the CPU (--device cpu)", file, line, what);
}

#if !STEREORT_WITH_CUDA
void throw_cuda_error(int code, const char* stmt, const char* file, int line, const char* func) {
  throw Error(std::string("CUDA error ") + std::to_string(code) + " in " + stmt, file, line, func);
}
void throw_cublas_error(int code, const char* stmt, const char* file, int line, const char* func) {
  throw Error(std::string("cuBLAS error ") + std::to_string(code) + " in " + stmt, file, line, func);
}
void throw_cudnn_error(int code, const char* stmt, const char* file, int line, const char* func) {
  throw Error(std::string("cuDNN error ") + std::to_string(code) + " in " + stmt, file, line, func);
}
void launch_check(const char*, const char*, int, const char*) {}
#endif

}  // namespace stereort
