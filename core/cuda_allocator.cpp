// core/cuda_allocator.cpp — the CUDA caching allocator (see core/allocator.h for the policy).
#include "core/allocator.h"

#if STEREORT_WITH_CUDA
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/check.h"

namespace stereort {
namespace {

struct Block {
  size_t size;   // class-rounded
  void* stream;  // the stream it was allocated on
};

struct DeviceCache {
  std::mutex mu;
  std::map<std::pair<void*, size_t>, std::vector<void*>> free_lists;  // (stream, class) -> blocks
  std::unordered_map<void*, Block> live;
  CudaAllocatorStats stats;

  void release_cached_locked() {
    for (auto& kv : free_lists)
      for (void* p : kv.second) {
        cudaFree(p);
        stats.reserved_bytes -= kv.first.second;
        stats.num_cuda_free++;
      }
    free_lists.clear();
  }
};

DeviceCache& cache_for(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<DeviceCache>> caches;  // leaked at exit on purpose: no cudaFree after
  std::lock_guard<std::mutex> lock(mu);                       // the driver shuts down
  auto& c = caches[device];
  if (!c) c.reset(new DeviceCache);
  return *c;
}

}  // namespace

void* cuda_caching_alloc(size_t nbytes, int device, void* stream) {
  DeviceCache& c = cache_for(device);
  size_t size = cuda_size_class(nbytes);
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.num_requests++;
  void* p = nullptr;
  auto it = c.free_lists.find({stream, size});
  if (it != c.free_lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    c.stats.num_cache_hits++;
  } else {
    STEREORT_CUDA_CHECK(cudaSetDevice(device));
    cudaError_t err = cudaMalloc(&p, size);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state
      c.release_cached_locked();
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      STEREORT_FAIL("CUDA out of memory on cuda:{} allocating {:.1f} MiB (in use {:.1f} MiB, peak {:.1f} MiB, "
                    "device free {:.1f} of {:.1f} MiB); reduce the input size, max disparity, batch or use "
                    "--precision fp16/bf16",
                    device, nbytes / 1048576.0, c.stats.current_bytes / 1048576.0, c.stats.peak_bytes / 1048576.0,
                    free_b / 1048576.0, total_b / 1048576.0);
    }
    c.stats.num_cuda_malloc++;
    c.stats.reserved_bytes += size;
  }
  c.live[p] = Block{size, stream};
  c.stats.current_bytes += size;
  c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.current_bytes);
  return p;
}

void cuda_caching_free(void* p, int device) {
  if (!p) return;
  DeviceCache& c = cache_for(device);
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.live.find(p);
  if (it == c.live.end()) return;  // not ours (should not happen); never throw from a deleter
  Block b = it->second;
  c.live.erase(it);
  c.stats.current_bytes -= b.size;
  c.free_lists[{b.stream, b.size}].push_back(p);
}

CudaAllocatorStats cuda_allocator_stats(int device) {
  DeviceCache& c = cache_for(device);
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void cuda_allocator_reset_peak(int device) {
  DeviceCache& c = cache_for(device);
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes = c.stats.current_bytes;
}

void cuda_empty_cache(int device) {
  DeviceCache& c = cache_for(device);
  std::lock_guard<std::mutex> lock(c.mu);
  cudaDeviceSynchronize();  // blocks may still be read by queued kernels
  c.release_cached_locked();
}

}  // namespace stereort
#endif  // STEREORT_WITH_CUDA
