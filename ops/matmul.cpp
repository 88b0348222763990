// ops/matmul.cpp — matmul: shape handling, CPU reference GEMM, autograd.
#include "ops/matmul.h"

#include <atomic>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/reduce.h"
#include "ops/iter.h"
#include "ops/view.h"

namespace stereort {

static std::atomic<bool> g_allow_tf32{false};
void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

static void cpu_gemm(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  int64_t bt = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* op = out.data<T>();
    int64_t sab = a.stride(0), sam = a.stride(1), sak = a.stride(2);
    int64_t sbb = b.stride(0), sbk = b.stride(1), sbn = b.stride(2);
    std::vector<double> acc(static_cast<size_t>(N));
    for (int64_t z = 0; z < bt; ++z)
      for (int64_t m = 0; m < M; ++m) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k = 0; k < K; ++k) {
          double av = to_d(ap[z * sab + m * sam + k * sak]);
          if (av == 0) continue;
          const T* brow = bp + z * sbb + k * sbk;
          for (int64_t n = 0; n < N; ++n) acc[size_t(n)] += av * to_d(brow[n * sbn]);
        }
        T* orow = op + (z * M + m) * N;
        for (int64_t n = 0; n < N; ++n)
          orow[n] = from_d<T>(alpha * acc[size_t(n)] + (beta != 0 ? beta * to_d(orow[n]) : 0.0));
      }
  });
}

void gemm_raw(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  if (out.numel() == 0) return;
  if (out.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::gemm(out, a, b, alpha, beta, Context::get(out.device())));
  } else {
    cpu_gemm(out, a, b, alpha, beta);
  }
}

int gemm_layout(const Shape& sh, const Shape& st) {
  int64_t R = sh[1], C = sh[2], sr = st[1], sc = st[2];
  if ((sc == 1 || C == 1) && (R == 1 || sr >= std::max<int64_t>(C, 1))) return 1;
  if ((sr == 1 || R == 1) && (C == 1 || sc >= std::max<int64_t>(R, 1))) return 2;
  return 0;
}

// View t (batch..., R, C) as (Bt, R, C) keeping any layout cuBLAS accepts; copy only when the batch dims don't merge.
static Tensor as_batched3(const Tensor& t, int64_t bt) {
  Shape s3 = {bt, t.size(-2), t.size(-1)};
  Shape st;
  if (view_strides(t.shape(), t.strides(), s3, &st) && gemm_layout(s3, st)) return make_view(t, s3, st, t.offset());
  Tensor c = t.contiguous();
  return make_view(c, s3, contiguous_strides(s3), c.offset());
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  STEREORT_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands must be at least 2-D, got {} and {}", a.desc(),
                 b.desc());
  STEREORT_CHECK(a.dtype() == b.dtype() && a.device() == b.device(), "matmul: operands differ: {} vs {}", a.desc(),
                 b.desc());
  STEREORT_CHECK(dtype_is_floating(a.dtype()), "matmul: floating operands required, got {}", a.desc());
  int64_t M = a.size(-2), K = a.size(-1), K2 = b.size(-2), N = b.size(-1);
  STEREORT_CHECK(K == K2, "matmul: inner dims differ: {} @ {} ({} vs {})", shape_str(a.shape()), shape_str(b.shape()),
                 K, K2);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul (batch dims)");
  int64_t bt = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  Tensor ad = a.detach(), bd = b.detach();
  bool done = false;
  if (b.dim() == 2 && ba == batch) {
    // Fold a's batch into M: one GEMM (Bt*M, K) @ (K, N) when a's rows merge.
    Shape s3 = {1, bt * M, K}, st;
    if (view_strides(a.shape(), a.strides(), s3, &st) && gemm_layout(s3, st) &&
        gemm_layout({1, K, N}, {0, b.stride(0), b.stride(1)})) {
      gemm_raw(make_view(out, {1, bt * M, N}, {bt * M * N, N, 1}, 0), make_view(a, s3, st, a.offset()),
               make_view(b, {1, K, N}, {0, b.stride(0), b.stride(1)}, b.offset()));
      done = true;
    }
  }
  if (!done) {
    Shape ea = batch, eb = batch;
    ea.push_back(M); ea.push_back(K);
    eb.push_back(K); eb.push_back(N);
    Tensor a3 = as_batched3(make_view(a, ea, broadcast_strides(a.shape(), a.strides(), ea), a.offset()), bt);
    Tensor b3 = as_batched3(make_view(b, eb, broadcast_strides(b.shape(), b.strides(), eb), b.offset()), bt);
    gemm_raw(make_view(out, {bt, M, N}, contiguous_strides({bt, M, N}), 0), a3, b3);
  }
  Shape sa = a.shape(), sb = b.shape();
  record("matmul", {a, b}, {out}, [ad, bd, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor ga = sum_to_shape(matmul(g[0], bd.transpose(-1, -2)), sa);
    Tensor gb = sum_to_shape(matmul(ad.transpose(-1, -2), g[0]), sb);
    return {ga, gb};
  });
  return out;
}

}  // namespace stereort
