// cuda/linear.cpp — linear forward through cuBLASLt with the bias fused as an epilogue.
//   Row-major out (T,Out) is the column-major matrix D (Out × T, ld Out), so we ask cuBLASLt for
//     D (Out×T) = op(A) · B + bias·1ᵀ,   A = weight storage read as column-major (In × Out), op = T;
//                                          B = x storage read as column-major (In × T, ld = x row stride), op = N;
//   and CUBLASLT_EPILOGUE_BIAS adds bias[m] to row m of D — one pass over the output instead of two.
//   Compute: CUBLAS_COMPUTE_32F (fp32 accumulation for f32/f16/bf16), CUBLAS_COMPUTE_32F_FAST_TF32 for f32 when
//   allow_tf32(); alpha/beta are float. The heuristic's first algorithm is cached per problem (dtype, tf32, sizes,
//   leading dim, bias, operand alignments); pointer alignments are passed as preferences because the default assumes
//   256-byte aligned operands, which a view into a larger buffer need not be.
//   F64, or a problem for which cuBLASLt offers no algorithm, falls back to cuBLAS (gemm_raw) after filling the output
//   with the broadcast bias (beta = 1).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <map>
#include <mutex>

#include "core/check.h"
#include "core/context.h"
#include "ops/linear.h"
#include "ops/matmul.h"

namespace stereort {
namespace cuda {

namespace {

constexpr size_t kLtWorkspace = size_t(32) << 20;  // cuBLASLt's recommendation for Hopper

cudaDataType_t lt_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: STEREORT_FAIL("linear: cuBLASLt path supports f32, f16, bf16; got {}", dtype_name(t));
  }
}

// Largest power of two (<= 256) dividing both the address and the leading-dimension step in bytes.
uint32_t alignment_of(const void* p, int64_t ld_bytes) {
  uint64_t a = reinterpret_cast<uint64_t>(p) | uint64_t(ld_bytes) | 256u;
  return uint32_t(a & (~a + 1));
}

struct LtPlan {
  bool ok = false;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

// Descriptors are created per call (a few microseconds, thread-safe); only the chosen algorithm is cached.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  ~LtDescs() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

void fallback_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t rows = x.size(0), in = x.size(1), outf = w.size(0);
  double beta = 0.0;
  if (b.defined()) {
    out.copy_(b.reshape({1, outf}));
    beta = 1.0;
  }
  gemm_raw(make_view(out, {1, rows, outf}, {rows * outf, outf, 1}, out.offset()),
           make_view(x, {1, rows, in}, {0, x.stride(0), 1}, x.offset()),
           make_view(w, {1, in, outf}, {0, 1, in}, w.offset()), 1.0, beta);
}

}  // namespace

void linear_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, const Context& ctx) {
  if (x.dtype() == DType::F64) return fallback_forward(out, x, w, bias);
  int64_t rows = x.size(0), in = x.size(1), outf = w.size(0), ldx = std::max<int64_t>(x.stride(0), in);
  size_t es = dtype_size(x.dtype());
  Tensor b = bias;
  if (b.defined() && (reinterpret_cast<uint64_t>(b.data_ptr()) & 15u)) b = b.clone();  // epilogue loads 16 B
  cudaDataType_t dt = lt_type(x.dtype());
  bool tf32 = x.dtype() == DType::F32 && allow_tf32();
  std::array<uint32_t, 3> align = {alignment_of(w.data_ptr(), in * int64_t(es)),
                                   alignment_of(x.data_ptr(), ldx * int64_t(es)),
                                   alignment_of(out.data_ptr(), outf * int64_t(es))};

  LtDescs ds;
  cublasComputeType_t ct = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  STEREORT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&ds.op, ct, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  STEREORT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  STEREORT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  cublasLtEpilogue_t epi = b.defined() ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  STEREORT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (b.defined()) {
    const void* bp = b.data_ptr();
    STEREORT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
  }
  STEREORT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.a, dt, uint64_t(in), uint64_t(outf), in));
  STEREORT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.b, dt, uint64_t(in), uint64_t(rows), ldx));
  STEREORT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.d, dt, uint64_t(outf), uint64_t(rows), outf));

  auto lt = static_cast<cublasLtHandle_t>(ctx.cublaslt());
  static std::mutex mu;
  static std::map<std::array<int64_t, 11>, LtPlan> cache;
  std::array<int64_t, 11> key = {ctx.device.index, int64_t(x.dtype()), tf32, rows, in, outf, ldx, b.defined(),
                                 align[0], align[1], align[2]};
  LtPlan plan;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      plan = it->second;
    } else {
      cublasLtMatmulPreference_t pref;
      STEREORT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      uint64_t ws = kLtWorkspace;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align[0], 4);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align[1], 4);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align[2], 4);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align[2], 4);
      cublasLtMatmulHeuristicResult_t res{};
      int n = 0;
      cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(lt, ds.op, ds.a, ds.b, ds.d, ds.d, pref, 1, &res, &n);
      cublasLtMatmulPreferenceDestroy(pref);
      if (st == CUBLAS_STATUS_SUCCESS && n > 0 && res.state == CUBLAS_STATUS_SUCCESS) {
        plan.ok = true;
        plan.algo = res.algo;
        plan.workspace = res.workspaceSize;
      }
      cache[key] = plan;
    }
  }
  if (!plan.ok) return fallback_forward(out, x, w, b);
  float alpha = 1.f, beta = 0.f;
  void* ws = plan.workspace ? ctx.workspace(plan.workspace) : nullptr;
  STEREORT_CUBLAS_CHECK(cublasLtMatmul(lt, ds.op, &alpha, w.data_ptr(), ds.a, x.data_ptr(), ds.b, &beta,
                                       out.data_ptr(), ds.d, out.data_ptr(), ds.d, &plan.algo, ws, plan.workspace,
                                       static_cast<cudaStream_t>(ctx.stream)));
}

}  // namespace cuda
}  // namespace stereort
