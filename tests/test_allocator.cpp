// tests/test_allocator.cpp — size classes; the CUDA caching allocator reuses freed blocks (its statistics prove it),
// tracks the peak, empties its cache, and reports OOM clearly.
#include "core/allocator.h"
#include "core/context.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("size classes: four per power of two, at least 512 bytes, waste below 25 %") {
  CHECK(cuda_size_class(1) == 512);
  CHECK(cuda_size_class(512) == 512);
  CHECK(cuda_size_class(513) == 640);
  CHECK(cuda_size_class(1024) == 1024);
  CHECK(cuda_size_class(1025) == 1280);
  CHECK(cuda_size_class(3000) == 3072);
  for (size_t n = 600; n < (size_t(1) << 30); n = n * 3 / 2 + 7) {
    size_t c = cuda_size_class(n);
    CHECK(c >= n);
    CHECK(double(c - n) < 0.25 * double(n));
  }
}

TEST_CASE("CPU storage is 64-byte aligned and views keep it alive") {
  std::weak_ptr<StorageImpl> w;
  Tensor v;
  {
    Tensor t = Tensor::zeros({1000});
    CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64 == 0);
    w = t.storage();
    v = t.slice(0, 10, 20);
  }
  CHECK_FALSE(w.expired());
  v = Tensor();
  CHECK(w.expired());
}

TEST_CASE("CUDA caching allocator reuses freed blocks and reports the peak [gpu]") {
  STEREORT_REQUIRE_GPU();
  cuda_empty_cache(0);
  CudaAllocatorStats s0 = cuda_allocator_stats(0);
  {
    Tensor a = Tensor::empty({1000, 1000}, DType::F32, gpu());  // 4 MB
    Tensor b = Tensor::empty({1000, 1000}, DType::F32, gpu());
  }
  CudaAllocatorStats s1 = cuda_allocator_stats(0);
  CHECK(s1.num_cuda_malloc - s0.num_cuda_malloc == 2);
  CHECK(s1.current_bytes == s0.current_bytes);
  CHECK(s1.peak_bytes >= s0.current_bytes + 2 * cuda_size_class(4000000));
  for (int i = 0; i < 10; ++i) {
    Tensor a = Tensor::empty({1000, 1000}, DType::F32, gpu());
    Tensor b = Tensor::empty({999, 1001}, DType::F32, gpu());  // same size class
  }
  CudaAllocatorStats s2 = cuda_allocator_stats(0);
  CHECK(s2.num_cuda_malloc == s1.num_cuda_malloc);       // no new cudaMalloc
  CHECK(s2.num_cache_hits - s1.num_cache_hits == 20);
  cuda_allocator_reset_peak(0);
  CHECK(cuda_allocator_stats(0).peak_bytes == cuda_allocator_stats(0).current_bytes);
  cuda_empty_cache(0);
  CudaAllocatorStats s3 = cuda_allocator_stats(0);
  CHECK(s3.reserved_bytes == s3.current_bytes);
  CHECK(s3.num_cuda_free > s2.num_cuda_free);
  expect_error([&] { Tensor::empty({int64_t(1) << 50}, DType::F32, gpu()); }, {"out of memory", "MiB"});
}
