// cuda/errors.cpp — messages for CUDA, cuBLAS and cuDNN failures, and the per-launch check.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#if STEREORT_WITH_CUDNN
#include <cudnn.h>
#endif

#include <string>

#include "core/error.h"

namespace stereort {

static std::string device_str() {
  int d = -1;
  if (cudaGetDevice(&d) != cudaSuccess) return "cuda:?";
  return "cuda:" + std::to_string(d);
}

void throw_cuda_error(int code, const char* stmt, const char* file, int line, const char* func) {
  auto e = cudaError_t(code);
  throw Error(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") on " +
                  device_str() + " in `" + stmt + "`",
              file, line, func);
}

void throw_cublas_error(int code, const char* stmt, const char* file, int line, const char* func) {
  throw Error(std::string("cuBLAS error ") + cublasGetStatusName(cublasStatus_t(code)) + " (" +
                  cublasGetStatusString(cublasStatus_t(code)) + ") on " + device_str() + " in `" + stmt + "`",
              file, line, func);
}

void throw_cudnn_error(int code, const char* stmt, const char* file, int line, const char* func) {
#if STEREORT_WITH_CUDNN
  std::string s = cudnnGetErrorString(cudnnStatus_t(code));
  if (code == CUDNN_STATUS_NOT_SUPPORTED)
    s += "; cuDNN may also report this when it runs out of memory: try a smaller input or lower precision";
#else
  std::string s = "code " + std::to_string(code);
#endif
  throw Error("cuDNN error " + s + " on " + device_str() + " in `" + stmt + "`", file, line, func);
}

void launch_check(const char* kernel, const char* file, int line, const char* func) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(std::string("kernel launch ") + kernel + " failed: " + cudaGetErrorName(e) + " (" +
                    cudaGetErrorString(e) + ") on " + device_str(),
                file, line, func);
  if (sync_check_enabled()) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      throw Error(std::string("kernel ") + kernel + " faulted (STEREORT_SYNC_CHECK): " + cudaGetErrorName(e) + " (" +
                      cudaGetErrorString(e) + ") on " + device_str(),
                  file, line, func);
  }
}

}  // namespace stereort
