// core/context.cpp — Context: streams, library handles, workspace; build/device information.
#include "core/context.h"

#include <map>
#include <mutex>

#include "core/check.h"

#if STEREORT_WITH_CUDA
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#if STEREORT_WITH_CUDNN
#include <cudnn.h>
#endif
#endif

namespace stereort {

Context::Context(Device d) : device(d) {
#if STEREORT_WITH_CUDA
  if (d.is_cuda()) {
    STEREORT_CUDA_CHECK(cudaSetDevice(d.index));
    cudaStream_t s;
    // A blocking stream: ordered with the legacy default stream, so plain cudaMemcpy from host code is safe.
    STEREORT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault));
    owned_stream_ = stream = s;
  }
#endif
}

Context::~Context() {
  // Default contexts live until exit; destroying handles after the driver unloads crashes, so we leave them.
}

void* Context::cublas() const {
#if STEREORT_WITH_CUDA
  if (!cublas_) {
    cublasHandle_t h;
    STEREORT_CUBLAS_CHECK(cublasCreate(&h));
    cublas_ = h;
  }
  STEREORT_CUBLAS_CHECK(cublasSetStream(static_cast<cublasHandle_t>(cublas_), static_cast<cudaStream_t>(stream)));
  return cublas_;
#else
  throw_built_without_cuda("Context::cublas", __FILE__, __LINE__);
#endif
}

void* Context::cublaslt() const {
#if STEREORT_WITH_CUDA
  if (!cublaslt_) {
    cublasLtHandle_t h;
    STEREORT_CUBLAS_CHECK(cublasLtCreate(&h));
    cublaslt_ = h;
  }
  return cublaslt_;
#else
  throw_built_without_cuda("Context::cublaslt", __FILE__, __LINE__);
#endif
}

void* Context::cudnn() const {
#if STEREORT_WITH_CUDNN
  if (!cudnn_) {
    cudnnHandle_t h;
    STEREORT_CUDNN_CHECK(cudnnCreate(&h));
    cudnn_ = h;
  }
  STEREORT_CUDNN_CHECK(cudnnSetStream(static_cast<cudnnHandle_t>(cudnn_), static_cast<cudaStream_t>(stream)));
  return cudnn_;
#else
  throw_built_without_cuda("Context::cudnn (built without cuDNN)", __FILE__, __LINE__);
#endif
}

void* Context::workspace(size_t nbytes) const {
  if (!workspace_ || workspace_->nbytes < nbytes) {
    workspace_.reset();  // release first so the allocator can reuse it
    workspace_ = allocate_storage(std::max<size_t>(nbytes, 1 << 20), device);
  }
  return workspace_->data;
}

void Context::synchronize() const {
#if STEREORT_WITH_CUDA
  if (device.is_cuda()) STEREORT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
#endif
}

Context& Context::get(Device d) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, Context*> contexts;  // never destroyed (see ~Context)
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(int(d.kind), d.is_cuda() ? d.index : 0);
  auto it = contexts.find(key);
  if (it != contexts.end()) return *it->second;
  if (d.is_cuda()) {
    STEREORT_CHECK(cuda_available(), "device {} requested but {}", d.str(),
                   STEREORT_WITH_CUDA ? "no CUDA device is visible" : "this build has no CUDA");
    STEREORT_CHECK(d.index < cuda_device_count(), "device {} requested but only {} CUDA device(s) are visible",
                   d.str(), cuda_device_count());
  }
  Context* c = new Context(d);
  contexts[key] = c;
  return *c;
}

StreamGuard::StreamGuard(Device d, void* s) : ctx_(Context::get(d)), saved_(ctx_.stream) { ctx_.stream = s; }
StreamGuard::~StreamGuard() { ctx_.stream = saved_; }

int cuda_device_count() {
#if STEREORT_WITH_CUDA
  static int n = [] {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return c;
  }();
  return n;
#else
  return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

std::string build_info() {
  std::string s = fmt::format("stereort {}\n", STEREORT_VERSION);
  s += fmt::format("build: CUDA {}, cuDNN {}, C++ {}\n", STEREORT_WITH_CUDA ? "on" : "off",
                   STEREORT_WITH_CUDNN ? "on" : "off", __cplusplus);
#if STEREORT_WITH_CUDA
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  s += fmt::format("CUDA runtime {}.{}, driver supports {}.{}\n", rt / 1000, rt % 1000 / 10, drv / 1000,
                   drv % 1000 / 10);
  int cbv = 0;
  cublasGetProperty(MAJOR_VERSION, &cbv);
  int cbm = 0;
  cublasGetProperty(MINOR_VERSION, &cbm);
  s += fmt::format("cuBLAS {}.{}\n", cbv, cbm);
#if STEREORT_WITH_CUDNN
  size_t dv = cudnnGetVersion();
  s += fmt::format("cuDNN {}.{}.{} (compiled against {}.{}.{})\n", dv / 10000, dv % 10000 / 100, dv % 100,
                   CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
#endif
  int n = cuda_device_count();
  if (n == 0) s += "GPU: no CUDA device\n";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
      s += fmt::format("GPU cuda:{}: {} (sm_{}{}, {} SMs, {:.1f} GiB, L2 {} MiB)\n", i, p.name, p.major, p.minor,
                       p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, p.l2CacheSize >> 20);
  }
#else
  s += "GPU: no CUDA device (built without CUDA)\n";
#endif
  return s;
}

}  // namespace stereort
