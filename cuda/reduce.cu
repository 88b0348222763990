// cuda/reduce.cu — row sums: out[r] = scale * sum_c x[r, c] for a contiguous (rows, cols) matrix.
//   cols <= 32: one thread per row; cols <= 2048: one warp per row; larger: one block per row, and when there are
//   too few rows to fill the GPU each row is first split into partial sums (written in the accumulation type) that
//   a second pass reduces. Accumulation in float (double for F64); the order is a fixed tree, so results are
//   deterministic run to run.
#include "cuda/common.cuh"
#include "ops/reduce.h"

namespace stereort {
namespace cuda {
namespace {

template <typename T, typename A>
__global__ void rows_thread_kernel(A* out, const T* x, int64_t rows, int64_t cols, double scale) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    A acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += A(to_op(x[r * cols + c]));
    out[r] = A(acc * A(scale));
  }
}

template <typename T, typename A>
__global__ void rows_warp_kernel(A* out, const T* x, int64_t rows, int64_t cols, double scale) {
  int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  const T* row = x + warp * cols;
  A acc = 0;
  for (int64_t c = lane; c < cols; c += 32) acc += A(to_op(row[c]));
  acc = warp_sum(acc);
  if (lane == 0) out[warp] = A(acc * A(scale));
}

// grid (splits, rows): block (s, r) sums columns [s*chunk, (s+1)*chunk) of row r into out[r*splits + s].
template <typename T, typename A>
__global__ void rows_block_kernel(A* out, const T* x, int64_t cols, int64_t chunk, double scale) {
  __shared__ A smem[32];
  int64_t r = blockIdx.y, s = blockIdx.x;
  const T* row = x + r * cols;
  int64_t c0 = s * chunk, c1 = min(cols, c0 + chunk);
  A acc = 0;
  for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) acc += A(to_op(row[c]));
  acc = block_sum(acc, smem);
  if (threadIdx.x == 0) out[r * gridDim.x + s] = A(acc * A(scale));
}

template <typename A, typename T>
__global__ void cast_kernel(T* out, const A* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_op<T>(in[i]);
}

template <typename T, typename A>
void sum_rows_typed(A* out, const T* x, int64_t rows, int64_t cols, double scale, const Context& ctx) {
  cudaStream_t st = stream_of(ctx);
  if (cols <= 32) {
    rows_thread_kernel<T, A><<<grid_1d(rows), kThreads, 0, st>>>(out, x, rows, cols, scale);
  } else if (cols <= 2048) {
    rows_warp_kernel<T, A><<<unsigned(ceil_div(rows * 32, kThreads)), kThreads, 0, st>>>(out, x, rows, cols, scale);
  } else {
    int64_t splits = 1;
    if (rows < 264) splits = std::min<int64_t>(ceil_div(cols, 8192), std::max<int64_t>(1, 1056 / rows));
    int64_t chunk = ceil_div(cols, splits);
    if (splits == 1) {
      rows_block_kernel<T, A><<<dim3(1, unsigned(rows)), kThreads, 0, st>>>(out, x, cols, chunk, scale);
    } else {
      A* partial = static_cast<A*>(cuda_caching_alloc(size_t(rows * splits) * sizeof(A), ctx.device.index, ctx.stream));
      rows_block_kernel<T, A><<<dim3(unsigned(splits), unsigned(rows)), kThreads, 0, st>>>(partial, x, cols, chunk, scale);
      STEREORT_LAUNCH_CHECK("rows_block_kernel");
      sum_rows_typed<A, A>(out, partial, rows, splits, 1.0, ctx);
      cuda_caching_free(partial, ctx.device.index);  // stream-ordered reuse keeps this safe
    }
  }
  STEREORT_LAUNCH_CHECK("sum_rows");
}

}  // namespace

void sum_rows(const Tensor& out, const Tensor& x, double scale, const Context& ctx) {
  int64_t rows = x.size(0), cols = x.size(1);
  if (rows == 0) return;
  dispatch_cuda_float64(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* xp = static_cast<const T*>(x.data_ptr());
    if constexpr (std::is_same<T, A>::value) {
      sum_rows_typed<T, A>(static_cast<A*>(out.data_ptr()), xp, rows, cols, scale, ctx);
    } else {
      A* acc = static_cast<A*>(cuda_caching_alloc(size_t(rows) * sizeof(A), ctx.device.index, ctx.stream));
      sum_rows_typed<T, A>(acc, xp, rows, cols, scale, ctx);
      cast_kernel<A, T><<<grid_1d(rows), kThreads, 0, stream_of(ctx)>>>(static_cast<T*>(out.data_ptr()), acc, rows);
      STEREORT_LAUNCH_CHECK("cast_kernel");
      cuda_caching_free(acc, ctx.device.index);
    }
  });
}

}  // namespace cuda
}  // namespace stereort
