// cuda/elementwise.cu — unary and binary element-wise kernels.
//   Contiguous operands take a vectorised path: 16-byte loads/stores (4 floats or 8 halves per thread per step),
//   grid-stride, scalar tail. Broadcast or strided binaries use a coalesced StridedIndexer<3>.
//   The op kind is a run-time value (uniform across the grid, so the switch costs no divergence); the kernels are
//   memory-bound, and one instantiation per dtype keeps compile time low. Math runs in opmath (float for halves).
#include "cuda/common.cuh"
#include "ops/elementwise.h"
#include "ops/unary_math.h"

namespace stereort {
namespace cuda {
namespace {

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <typename T>
__global__ void unary_kernel(UnaryKind k, T* __restrict__ out, const T* __restrict__ x, int64_t n, double p,
                             bool vectorize) {
  using O = opmath_t<T>;
  constexpr int V = 16 / sizeof(T);
  const O pp = O(p);
  int64_t nvec = vectorize ? n / V : 0;
  int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, nthreads = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < nvec; i += nthreads) {
    Vec<T, V> a = reinterpret_cast<const Vec<T, V>*>(x)[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_op<T>(apply_unary<O>(k, to_op(a.v[j]), pp));
    reinterpret_cast<Vec<T, V>*>(out)[i] = r;
  }
  for (int64_t i = nvec * V + tid; i < n; i += nthreads) out[i] = from_op<T>(apply_unary<O>(k, to_op(x[i]), pp));
}

template <typename T>
__global__ void binary_contig_kernel(BinaryKind k, T* __restrict__ out, const T* __restrict__ a,
                                     const T* __restrict__ b, int64_t n) {
  using O = opmath_t<T>;
  constexpr int V = 16 / sizeof(T);
  int64_t nvec = n / V;
  int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, nthreads = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < nvec; i += nthreads) {
    Vec<T, V> va = reinterpret_cast<const Vec<T, V>*>(a)[i], vb = reinterpret_cast<const Vec<T, V>*>(b)[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_op<T>(apply_binary<O>(k, to_op(va.v[j]), to_op(vb.v[j])));
    reinterpret_cast<Vec<T, V>*>(out)[i] = r;
  }
  for (int64_t i = nvec * V + tid; i < n; i += nthreads)
    out[i] = from_op<T>(apply_binary<O>(k, to_op(a[i]), to_op(b[i])));
}

template <typename T>
__global__ void binary_strided_kernel(BinaryKind k, T* out, const T* a, const T* b, int64_t n, StridedIndexer<3> ix) {
  using O = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets_any(i, n, off);
    out[off[0]] = from_op<T>(apply_binary<O>(k, to_op(a[off[1]]), to_op(b[off[2]])));
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

void unary(UnaryKind k, const Tensor& out, const Tensor& x, double p, const Context& ctx) {
  int64_t n = x.numel();
  dispatch_cuda_float64(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* op = static_cast<T*>(out.data_ptr());
    bool vec = aligned16(xp) && aligned16(op);  // a view at an odd offset takes the scalar loop
    int64_t work = vec ? n / int64_t(16 / sizeof(T)) + 1 : n;
    unary_kernel<T><<<grid_1d(work), kThreads, 0, stream_of(ctx)>>>(k, op, xp, n, p, vec);
  });
  STEREORT_LAUNCH_CHECK("unary_kernel");
}

void binary(BinaryKind k, const Tensor& out, const Tensor& a, const Tensor& b, const Context& ctx) {
  int64_t n = out.numel();
  dispatch_cuda_float64(out.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* op = static_cast<T*>(out.data_ptr());
    const T* ap = static_cast<const T*>(a.data_ptr());
    const T* bp = static_cast<const T*>(b.data_ptr());
    if (a.is_contiguous() && b.is_contiguous() && aligned16(ap) && aligned16(bp) && aligned16(op)) {
      binary_contig_kernel<T><<<grid_1d(n / (16 / sizeof(T)) + 1), kThreads, 0, stream_of(ctx)>>>(k, op, ap, bp, n);
    } else {
      IterDims it = coalesce_dims(out.shape(), {out.strides(), a.strides(), b.strides()});
      binary_strided_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(k, op, ap, bp, n, make_indexer<3>(it));
    }
  });
  STEREORT_LAUNCH_CHECK("binary_kernel");
}

}  // namespace cuda
}  // namespace stereort
