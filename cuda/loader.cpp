// cuda/loader.cpp — CUDA runtime calls of the training data pipeline (train/loader.h): pinned host buffers, the
// non-blocking copy stream, events and asynchronous host-to-device copies. Every call is checked.
#include <cuda_runtime.h>

#include "core/error.h"
#include "train/loader.h"

namespace stereort {
namespace cuda {

void* host_alloc_pinned(size_t nbytes) {
  void* p = nullptr;
  STEREORT_CUDA_CHECK(cudaHostAlloc(&p, nbytes, cudaHostAllocDefault));
  return p;
}

void host_free_pinned(void* p) {
  if (p) STEREORT_CUDA_CHECK(cudaFreeHost(p));
}

void* stream_create_nonblocking(int device) {
  STEREORT_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s;
  // Non-blocking: the copies must not be serialised behind legacy-default-stream work (synchronous cudaMemcpy).
  STEREORT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(void* stream) {
  if (stream) STEREORT_CUDA_CHECK(cudaStreamDestroy(static_cast<cudaStream_t>(stream)));
}

void stream_synchronize(void* stream) { STEREORT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

void* event_create(int device) {
  STEREORT_CUDA_CHECK(cudaSetDevice(device));
  cudaEvent_t e;
  STEREORT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void event_destroy(void* event) {
  if (event) STEREORT_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
}

void event_record(void* event, void* stream) {
  STEREORT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}

void event_synchronize(void* event) { STEREORT_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }

void stream_wait_event(void* stream, void* event) {
  STEREORT_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}

void memcpy_h2d_async(void* dst, const void* src, size_t nbytes, void* stream) {
  STEREORT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)));
}

}  // namespace cuda
}  // namespace stereort
