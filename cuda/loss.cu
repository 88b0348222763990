// cuda/loss.cu — masked mean of l(pred - target) (ops/loss.h) and its gradient.
//   Forward, two passes with a fixed shape so the result is the same run to run: pass 1 runs G = min(ceil(n/256),
//   kMaxPartials) blocks, each summing a grid-stride share into (sum in fp32 / f64, count in int64); pass 2, one
//   block, reduces the G partials and writes value = sum / max(count, 1) (0 when nothing is valid) and count.
//   Backward: one element-wise pass reading the output gradient and the count from device memory (no host sync).
//   The per-element formulas (loss_value / loss_grad) are shared with the CPU reference (ops/loss.h).
#include "cuda/common.cuh"
#include "ops/loss.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kMaxPartials = 1024;

template <typename M>
__device__ __forceinline__ bool is_valid(const M* mask, int64_t i) {
  return mask == nullptr || mask[i] != M(0);
}

template <typename T, typename M>
__global__ void loss_partials_kernel(opmath_t<T>* __restrict__ psum, long long* __restrict__ pcount,
                                     const T* __restrict__ pred, const T* __restrict__ target,
                                     const M* __restrict__ mask, int64_t n, LossKind kind, opmath_t<T> beta) {
  using A = opmath_t<T>;
  __shared__ A s_sum[32];
  __shared__ long long s_cnt[32];
  A acc = 0;
  long long cnt = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (!is_valid(mask, i)) continue;
    A d = target ? A(to_op(pred[i])) - A(to_op(target[i])) : A(to_op(pred[i]));
    acc += loss_value<A>(kind, d, beta);
    ++cnt;
  }
  acc = block_sum(acc, s_sum);
  cnt = block_sum(cnt, s_cnt);
  if (threadIdx.x == 0) {
    psum[blockIdx.x] = acc;
    pcount[blockIdx.x] = cnt;
  }
}

template <typename T>
__global__ void loss_finish_kernel(T* __restrict__ value, int64_t* __restrict__ count,
                                   const opmath_t<T>* __restrict__ psum, const long long* __restrict__ pcount,
                                   int parts) {
  using A = opmath_t<T>;
  __shared__ A s_sum[32];
  __shared__ long long s_cnt[32];
  A acc = 0;
  long long cnt = 0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) {
    acc += psum[i];
    cnt += pcount[i];
  }
  acc = block_sum(acc, s_sum);
  cnt = block_sum(cnt, s_cnt);
  if (threadIdx.x == 0) {
    *value = from_op<T>(cnt > 0 ? acc / A(cnt) : A(0));
    *count = cnt;
  }
}

template <typename T, typename M>
__global__ void loss_backward_kernel(T* __restrict__ dpred, const T* __restrict__ g, const T* __restrict__ pred,
                                     const T* __restrict__ target, const M* __restrict__ mask,
                                     const int64_t* __restrict__ count, int64_t n, LossKind kind, opmath_t<T> beta) {
  using A = opmath_t<T>;
  int64_t c = *count;
  A scale = A(to_op(*g)) / A(c > 0 ? c : 1);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    A d = target ? A(to_op(pred[i])) - A(to_op(target[i])) : A(to_op(pred[i]));
    dpred[i] = from_op<T>(is_valid(mask, i) ? scale * loss_grad<A>(kind, d, beta) : A(0));
  }
}

// f(TypeTag<M>) for the mask's element type; no mask -> uint8_t with a null pointer.
template <typename F>
void dispatch_mask(const Tensor& mask, F&& f) {
  if (!mask.defined()) {
    f(TypeTag<uint8_t>{});
    return;
  }
  switch (mask.dtype()) {
    case DType::U8:
    case DType::Bool:
      f(TypeTag<uint8_t>{});
      return;
    case DType::F32:
      f(TypeTag<float>{});
      return;
    case DType::F64:
      f(TypeTag<double>{});
      return;
    default:
      throw_error(__FILE__, __LINE__, "masked_loss",
                  std::string("masked loss: unexpected mask dtype ") + dtype_name(mask.dtype()));
  }
}

template <typename M>
const M* mask_ptr(const Tensor& mask) {
  return mask.defined() ? static_cast<const M*>(mask.data_ptr()) : nullptr;
}

}  // namespace

void masked_loss_forward(const Tensor& value, const Tensor& count, LossKind kind, const Tensor& pred,
                         const Tensor& target, const Tensor& mask, double beta, const Context& ctx) {
  int64_t n = pred.numel();
  int parts = int(std::min<int64_t>(std::max<int64_t>(ceil_div(n, kThreads), 1), kMaxPartials));
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float64(pred.dtype(), "masked_loss", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* pp = static_cast<const T*>(pred.data_ptr());
    const T* tp = target.defined() ? static_cast<const T*>(target.data_ptr()) : nullptr;
    void* scratch = cuda_caching_alloc(size_t(parts) * (sizeof(A) + sizeof(long long)), ctx.device.index, ctx.stream);
    long long* pcount = static_cast<long long*>(scratch);
    A* psum = reinterpret_cast<A*>(pcount + parts);
    dispatch_mask(mask, [&](auto mtag) {
      using M = typename decltype(mtag)::type;
      loss_partials_kernel<T, M>
          <<<unsigned(parts), kThreads, 0, st>>>(psum, pcount, pp, tp, mask_ptr<M>(mask), n, kind, A(beta));
    });
    STEREORT_LAUNCH_CHECK("loss_partials_kernel");
    loss_finish_kernel<T><<<1, kThreads, 0, st>>>(static_cast<T*>(value.data_ptr()),
                                                  static_cast<int64_t*>(count.data_ptr()), psum, pcount, parts);
    STEREORT_LAUNCH_CHECK("loss_finish_kernel");
    cuda_caching_free(scratch, ctx.device.index);  // stream-ordered reuse keeps this safe
  });
}

void masked_loss_backward(const Tensor& dpred, LossKind kind, const Tensor& g, const Tensor& pred, const Tensor& target,
                          const Tensor& mask, const Tensor& count, double beta, const Context& ctx) {
  int64_t n = pred.numel();
  dispatch_cuda_float64(pred.dtype(), "masked_loss_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* tp = target.defined() ? static_cast<const T*>(target.data_ptr()) : nullptr;
    dispatch_mask(mask, [&](auto mtag) {
      using M = typename decltype(mtag)::type;
      loss_backward_kernel<T, M><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
          static_cast<T*>(dpred.data_ptr()), static_cast<const T*>(g.data_ptr()),
          static_cast<const T*>(pred.data_ptr()), tp, mask_ptr<M>(mask), static_cast<const int64_t*>(count.data_ptr()),
          n, kind, A(beta));
    });
  });
  STEREORT_LAUNCH_CHECK("loss_backward_kernel");
}

}  // namespace cuda
}  // namespace stereort
