// cuda/optimizer.cu — fused multi-tensor Adam/AdamW and SGD updates.
//   Up to kMaxTensors tensors per launch (more are split into several launches); the flattened element space is
//   walked grid-stride and each element finds its tensor by binary search over the prefix offsets held in the
//   kernel parameters. Math in fp32 (the optimizer state is fp32); parameters may be f32/f16/bf16.
#include "cuda/common.cuh"
#include "train/optimizer.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kMaxTensors = 64;

template <typename T>
struct TensorList {
  T* p[kMaxTensors];
  const T* g[kMaxTensors];
  float* s0[kMaxTensors];
  float* s1[kMaxTensors];
  int64_t start[kMaxTensors + 1];  // prefix offsets of the flattened element space
  int count;
};

template <typename T>
__device__ __forceinline__ int find_tensor(const TensorList<T>& L, int64_t i) {
  int lo = 0, hi = L.count - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) >> 1;
    if (L.start[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <typename T>
__global__ void adam_kernel(TensorList<T> L, AdamStep s) {
  int64_t n = L.start[L.count];
  float step_size = s.lr / s.bias1, rs2 = rsqrtf(s.bias2);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int t = find_tensor(L, i);
    int64_t k = i - L.start[t];
    float w = to_op(L.p[t][k]), g = to_op(L.g[t][k]);
    if (s.decoupled) w *= 1.0f - s.lr * s.wd;
    else g += s.wd * w;
    float m = s.beta1 * L.s0[t][k] + (1.0f - s.beta1) * g;
    float v = s.beta2 * L.s1[t][k] + (1.0f - s.beta2) * g * g;
    L.s0[t][k] = m;
    L.s1[t][k] = v;
    L.p[t][k] = from_op<T>(w - step_size * m / (sqrtf(v) * rs2 + s.eps));
  }
}

template <typename T>
__global__ void sgd_kernel(TensorList<T> L, float lr, float mu, float damp, float wd, bool nesterov, bool first) {
  int64_t n = L.start[L.count];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int t = find_tensor(L, i);
    int64_t k = i - L.start[t];
    float w = to_op(L.p[t][k]), g = to_op(L.g[t][k]) + wd * w;
    if (mu != 0.0f) {
      float b = first ? g : mu * L.s0[t][k] + (1.0f - damp) * g;
      L.s0[t][k] = b;
      g = nesterov ? g + mu * b : b;
    }
    L.p[t][k] = from_op<T>(w - lr * g);
  }
}

template <typename T, typename Launch>
void for_each_batch(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& s0, const std::vector<Tensor>* s1, Launch&& launch) {
  for (size_t base = 0; base < params.size(); base += kMaxTensors) {
    TensorList<T> L{};
    L.count = int(std::min<size_t>(kMaxTensors, params.size() - base));
    int64_t off = 0;
    for (int j = 0; j < L.count; ++j) {
      size_t i = base + size_t(j);
      L.p[j] = static_cast<T*>(params[i].data_ptr());
      L.g[j] = static_cast<const T*>(grads[i].data_ptr());
      L.s0[j] = static_cast<float*>(s0[i].data_ptr());
      L.s1[j] = s1 ? static_cast<float*>((*s1)[i].data_ptr()) : nullptr;
      L.start[j] = off;
      off += params[i].numel();
    }
    L.start[L.count] = off;
    if (off > 0) launch(L, off);
  }
}

void check_same_dtype(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const char* op) {
  for (size_t i = 0; i < params.size(); ++i)
    if (grads[i].dtype() != params[0].dtype() || params[i].dtype() != params[0].dtype())
      throw_error(__FILE__, __LINE__, op, std::string(op) + ": parameters and gradients must share one dtype per group");
}

}  // namespace

void adam_multi_tensor(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& m, const std::vector<Tensor>& v, const AdamStep& s,
                       const Context& ctx) {
  check_same_dtype(params, grads, "adam");
  dispatch_cuda_float(params[0].dtype(), "adam", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_batch<T>(params, grads, m, &v, [&](const TensorList<T>& L, int64_t n) {
      adam_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(L, s);
      STEREORT_LAUNCH_CHECK("adam_kernel");
    });
  });
}

void sgd_multi_tensor(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& buf, float lr, float momentum, float dampening, float wd,
                      bool nesterov, bool first, const Context& ctx) {
  check_same_dtype(params, grads, "sgd");
  dispatch_cuda_float(params[0].dtype(), "sgd", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_batch<T>(params, grads, buf, nullptr, [&](const TensorList<T>& L, int64_t n) {
      sgd_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(L, lr, momentum, dampening, wd, nesterov, first);
      STEREORT_LAUNCH_CHECK("sgd_kernel");
    });
  });
}

}  // namespace cuda
}  // namespace stereort
