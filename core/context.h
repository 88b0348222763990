// core/context.h — per-device execution state passed to every CUDA launcher.
//   A Context holds the device, its stream, the cuBLAS / cuBLASLt / cuDNN handles (created on first use) and a
//   growable workspace. CUDA types are kept opaque (void*) so that CPU-only translation units need no CUDA headers;
//   cuda/common.cuh casts them back.
//   Context::get(device) is the process-wide default context of a device: the ops layer looks it up from the
//   tensors' device and hands it to launchers explicitly (launchers never look up globals themselves).
//   StreamGuard swaps the stream of a device's default context for a scope (the data pipeline's copy stream).
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/allocator.h"

namespace stereort {

class Context {
 public:
  explicit Context(Device device);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device;
  void* stream = nullptr;  // cudaStream_t

  void* cublas() const;    // cublasHandle_t, bound to `stream`
  void* cublaslt() const;  // cublasLtHandle_t
  void* cudnn() const;     // cudnnHandle_t, bound to `stream`
  // Scratch memory valid until the next workspace() call on this context (stream-ordered reuse).
  void* workspace(size_t nbytes) const;
  void synchronize() const;

  static Context& get(Device device);

 private:
  void* owned_stream_ = nullptr;
  mutable void* cublas_ = nullptr;
  mutable void* cublaslt_ = nullptr;
  mutable void* cudnn_ = nullptr;
  mutable Storage workspace_;
  friend class StreamGuard;
};

class StreamGuard {
 public:
  StreamGuard(Device device, void* stream);
  ~StreamGuard();

 private:
  Context& ctx_;
  void* saved_;
};

// True when this build has CUDA and a device is visible. Never throws.
bool cuda_available();
int cuda_device_count();
// One line per fact: build flags, CUDA runtime/driver, cuBLAS, cuDNN versions, and the GPU (or "no CUDA device").
std::string build_info();

}  // namespace stereort
