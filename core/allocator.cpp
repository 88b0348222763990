// core/allocator.cpp — CPU allocation, Storage factories and the size-class rule shared with the CUDA allocator.
#include "core/allocator.h"

#include <new>

#include "core/check.h"
#include "core/context.h"

namespace stereort {

void* cpu_aligned_alloc(size_t nbytes) {
  if (nbytes == 0) nbytes = 64;
  try {
    return ::operator new(nbytes, std::align_val_t(64));
  } catch (const std::bad_alloc&) {
    STEREORT_FAIL("out of host memory allocating {} bytes ({:.1f} MiB)", nbytes, double(nbytes) / (1 << 20));
  }
}
void cpu_aligned_free(void* p) { ::operator delete(p, std::align_val_t(64)); }

size_t cuda_size_class(size_t nbytes) {
  if (nbytes <= 512) return 512;
  // Four classes per power of two: 2^k * {1, 1.25, 1.5, 1.75}.
  int k = 63 - __builtin_clzll(uint64_t(nbytes));
  size_t base = size_t(1) << k;
  size_t step = base >> 2;
  return (nbytes + step - 1) / step * step;
}

Storage allocate_storage(size_t nbytes, Device device) {
  auto s = std::make_shared<StorageImpl>();
  s->nbytes = nbytes;
  s->device = device;
  if (device.is_cpu()) {
    s->data = cpu_aligned_alloc(nbytes);
    s->deleter = cpu_aligned_free;
  } else {
    int dev = device.index;
    s->data = cuda_caching_alloc(nbytes, dev, Context::get(device).stream);
    s->deleter = [dev](void* p) { cuda_caching_free(p, dev); };
  }
  return s;
}

Storage wrap_storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter) {
  auto s = std::make_shared<StorageImpl>();
  s->data = data;
  s->nbytes = nbytes;
  s->device = device;
  s->deleter = std::move(deleter);
  return s;
}

#if !STEREORT_WITH_CUDA
void* cuda_caching_alloc(size_t, int, void*) { throw_built_without_cuda("cuda_caching_alloc", __FILE__, __LINE__); }
void cuda_caching_free(void*, int) {}
CudaAllocatorStats cuda_allocator_stats(int) { return {}; }
void cuda_allocator_reset_peak(int) {}
void cuda_empty_cache(int) {}
#endif

}  // namespace stereort
