// cuda/blas.cpp — cuBLAS GEMM wrapper behind gemm_raw: row-major (Bt,M,N) = (Bt,M,K) @ (Bt,K,N).
//   cuBLAS is column-major, so we compute Cᵀ (N×M) = Bᵀ (N×K) · Aᵀ (K×M): a row-major operand is a column-major
//   transpose for free. Each operand's layout picks its op (N or T) and leading dimension.
//   Compute type: fp32 (CUBLAS_COMPUTE_32F), or CUBLAS_COMPUTE_32F_FAST_TF32 for f32 when allow_tf32().
#include <cublas_v2.h>

#include "core/check.h"
#include "core/context.h"
#include "ops/matmul.h"

namespace stereort {
namespace cuda {

namespace {
struct Operand {
  cublasOperation_t op;
  int64_t ld;
};
// Operand (R, C) with strides (sr, sc), as the column-major matrix cuBLAS reads: a row-major operand is its
// transpose with ld = sr (op N), a column-major one is itself with ld = sc (op T). See gemm_layout().
Operand layout_of(const Tensor& t, const char* which) {
  int lay = gemm_layout(t.shape(), t.strides());
  int64_t R = t.size(1), C = t.size(2);
  if (lay == 1) return {CUBLAS_OP_N, std::max<int64_t>(t.stride(1), std::max<int64_t>(C, 1))};
  if (lay == 2) return {CUBLAS_OP_T, std::max<int64_t>(t.stride(2), std::max<int64_t>(R, 1))};
  STEREORT_FAIL("gemm: operand {} {} with strides {} is neither row- nor column-major; make it contiguous", which,
                shape_str(t.shape()), shape_str(t.strides()));
}
cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F64: return CUDA_R_64F;
    default: STEREORT_FAIL("gemm: unsupported dtype {}", dtype_name(t));
  }
}
}  // namespace

void gemm(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta, const Context& ctx) {
  int64_t bt = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  Operand oa = layout_of(a, "a"), ob = layout_of(b, "b");
  cudaDataType_t dt = cuda_type(out.dtype());
  cublasComputeType_t ct = out.dtype() == DType::F64 ? CUBLAS_COMPUTE_64F
                           : (out.dtype() == DType::F32 && allow_tf32()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                        : CUBLAS_COMPUTE_32F;
  float fa = float(alpha), fb = float(beta);
  const void* pa = out.dtype() == DType::F64 ? static_cast<const void*>(&alpha) : &fa;
  const void* pb = out.dtype() == DType::F64 ? static_cast<const void*>(&beta) : &fb;
  auto h = static_cast<cublasHandle_t>(ctx.cublas());
  STEREORT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, ob.op, oa.op, int(N), int(M), int(K), pa, b.data_ptr(), dt, int(ob.ld), b.stride(0), a.data_ptr(), dt,
      int(oa.ld), a.stride(0), pb, out.data_ptr(), dt, int(N), M * N, int(bt), ct, CUBLAS_GEMM_DEFAULT));
}

}  // namespace cuda
}  // namespace stereort
