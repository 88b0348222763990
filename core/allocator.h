// core/allocator.h — storage allocators and the refcounted Storage.
//   CPU: 64-byte aligned host memory (operator new with alignment).
//   CUDA: a caching allocator per device. Requests are rounded up to size classes (four per power of two, at least
//   512 B, so waste is < 25 %); a freed block goes back to the free list of the (class, stream) it came from and is
//   handed out again to the next request of that class on that stream without a cudaMalloc. When cudaMalloc fails,
//   every cached block is released and the call retried once; if it fails again the error reports the request and
//   the allocator's statistics. Blocks are not split and not shared across streams: a tensor used on another stream
//   must be synchronised by the caller before it is freed (the data pipeline does this with events).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/shape.h"

namespace stereort {

struct StorageImpl {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  std::function<void(void*)> deleter;  // frees `data`; empty for borrowed memory
  StorageImpl() = default;
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;
  ~StorageImpl() {
    if (deleter && data) deleter(data);
  }
};
using Storage = std::shared_ptr<StorageImpl>;

// Allocate `nbytes` on `device` (CUDA: on the device's current context stream).
Storage allocate_storage(size_t nbytes, Device device);
// Wrap memory owned elsewhere (an mmap'd file, a pinned buffer). `deleter` runs when the last reference goes.
Storage wrap_storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);

void* cpu_aligned_alloc(size_t nbytes);
void cpu_aligned_free(void* p);

struct CudaAllocatorStats {
  size_t current_bytes = 0;   // bytes in live blocks (class-rounded)
  size_t peak_bytes = 0;      // max of current_bytes since start or reset_peak
  size_t reserved_bytes = 0;  // bytes obtained from cudaMalloc and not yet returned
  size_t num_cuda_malloc = 0; // cudaMalloc calls that succeeded
  size_t num_cuda_free = 0;   // cudaFree calls
  size_t num_requests = 0;    // allocate() calls
  size_t num_cache_hits = 0;  // requests served from the free lists
};

size_t cuda_size_class(size_t nbytes);  // the rounded size a request of nbytes occupies
CudaAllocatorStats cuda_allocator_stats(int device = 0);
void cuda_allocator_reset_peak(int device = 0);
void cuda_empty_cache(int device = 0);  // cudaFree every cached (free) block
// Raw interface (used by Storage and by code that needs scratch memory outside a tensor).
void* cuda_caching_alloc(size_t nbytes, int device, void* stream);
void cuda_caching_free(void* p, int device);

}  // namespace stereort
