// tests/test_errors.cpp — stereort::Error carries location and message; check macros for CUDA/cuBLAS/launches.
#include "core/check.h"
#include "core/context.h"
#include "test_util.h"

#if STEREORT_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

using namespace stereort;
using namespace stereort::test;

TEST_CASE("Error carries file:line, function and the message") {
  try {
    STEREORT_CHECK(1 == 2, "myop: input {} has {} channels, expected {}; fix the preset", shape_str({1, 3, 4}), 3, 4);
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.message() == "myop: input (1,3,4) has 3 channels, expected 4; fix the preset");
    CHECK(std::string(e.what()).find("test_errors.cpp:") != std::string::npos);
    CHECK(e.line() > 0);
  }
}

TEST_CASE("CUDA requests fail clearly on a CPU-only machine or build") {
  if (cuda_available()) return;
  expect_error([] { Tensor::zeros({3}, DType::F32, Device::cuda(0)); }, {"cuda:0"});
  expect_error([] { Device::parse("tpu"); }, {"unknown device", "tpu"});
}

TEST_CASE("CUDA, cuBLAS and launch checks report the statement and the error [gpu]") {
  STEREORT_REQUIRE_GPU();
#if STEREORT_WITH_CUDA
  expect_error([] { STEREORT_CUDA_CHECK(cudaMemcpy(nullptr, reinterpret_cast<void*>(16), 4, cudaMemcpyDeviceToDevice)); },
               {"CUDA error", "cudaMemcpy", "cuda:"});
  expect_error([] { STEREORT_CUBLAS_CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, nullptr, nullptr, 1,
                                                      nullptr, 1, nullptr, nullptr, 1)); },
               {"cuBLAS error", "cublasSgemm"});
  cudaGetLastError();
  // A bad launch configuration is caught by the launch check.
  expect_error([] {
    cudaFuncAttributes attr;
    (void)attr;
    dim3 too_many(1u << 31, 1, 1);
    void* args[] = {nullptr};
    (void)args;
    cudaError_t e = cudaLaunchKernel(nullptr, too_many, dim3(1), args, 0, nullptr);
    (void)e;
    STEREORT_LAUNCH_CHECK("bogus_kernel");
  }, {"bogus_kernel"});
  cudaGetLastError();
  set_sync_check(true);
  CHECK(sync_check_enabled());
  Tensor t = Tensor::ones({100}, DType::F32, gpu());  // runs with a sync after every launch
  CHECK(t.cpu().to_vector()[99] == 1.0);
  set_sync_check(false);
#endif
}
