// cuda/dnn.cpp — cuDNN descriptors and the cached per-problem algorithm choice (see cuda/dnn.h).
//   The three passes have their own perf-struct and function names in cuDNN's legacy API; choose_pass() is written
//   once over them and takes the pass's Find / Get_v7 / WorkspaceSize calls as lambdas.
#if STEREORT_WITH_CUDNN
#include "cuda/dnn.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>
#include <vector>

#include "core/check.h"
#include "ops/matmul.h"

namespace stereort {
namespace cuda {
namespace dnn {

cudnnDataType_t data_type(DType t, const char* op) {
  switch (t) {
    case DType::F32: return CUDNN_DATA_FLOAT;
    case DType::F16: return CUDNN_DATA_HALF;
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    default: STEREORT_FAIL("{}: the cuDNN path supports f32, f16 and bf16, got {}", op, dtype_name(t));
  }
}

namespace {
std::vector<int> to_int(const Shape& s, const char* what) {
  std::vector<int> r;
  for (int64_t v : s) {
    STEREORT_CHECK(v <= INT_MAX, "cuDNN convolution: {} {} exceeds 2^31 - 1, which the legacy API cannot describe",
                   what, shape_str(s));
    r.push_back(int(v));
  }
  return r;
}
}  // namespace

TensorDesc::TensorDesc(DType t, const Shape& dims) {
  STEREORT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_));
  std::vector<int> d = to_int(dims, "tensor"), st = to_int(contiguous_strides(dims), "tensor stride");
  STEREORT_CUDNN_CHECK(
      cudnnSetTensorNdDescriptor(d_, data_type(t, "conv"), int(d.size()), d.data(), st.data()));
}
TensorDesc::~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }

FilterDesc::FilterDesc(DType t, const Shape& dims) {
  STEREORT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_));
  std::vector<int> d = to_int(dims, "filter");
  STEREORT_CUDNN_CHECK(
      cudnnSetFilterNdDescriptor(d_, data_type(t, "conv"), CUDNN_TENSOR_NCHW, int(d.size()), d.data()));
}
FilterDesc::~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }

ConvDesc::ConvDesc(const ConvGeometry& g, cudnnMathType_t math) {
  STEREORT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d_));
  Shape pad = g.padding, stride = g.stride, dil = g.dilation;
  if (g.nsp == 1) {  // conv1d as 2-D with H = 1
    pad.insert(pad.begin(), 0);
    stride.insert(stride.begin(), 1);
    dil.insert(dil.begin(), 1);
  }
  std::vector<int> p = to_int(pad, "padding"), s = to_int(stride, "stride"), d = to_int(dil, "dilation");
  STEREORT_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(d_, int(p.size()), p.data(), s.data(), d.data(),
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  STEREORT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d_, int(g.groups)));
  set_math(math);
}
ConvDesc::~ConvDesc() { cudnnDestroyConvolutionDescriptor(d_); }
void ConvDesc::set_math(cudnnMathType_t m) const { STEREORT_CUDNN_CHECK(cudnnSetConvolutionMathType(d_, m)); }

Problem make_problem(Pass pass, const ConvGeometry& g, DType dtype, void* x, void* w, void* y) {
  Problem p{pass, g, dtype, CUDNN_DEFAULT_MATH, g.x_shape(), g.w_shape(), g.y_shape(), x, w, y};
  if (g.nsp == 1) {
    p.x_dims.insert(p.x_dims.begin() + 2, 1);
    p.w_dims.insert(p.w_dims.begin() + 2, 1);
    p.y_dims.insert(p.y_dims.begin() + 2, 1);
  }
  if (dtype == DType::F32) p.math = allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  else p.math = CUDNN_TENSOR_OP_MATH;
  return p;
}

namespace {

std::vector<int64_t> cache_key(const Problem& p, int device) {
  const ConvGeometry& g = p.g;
  // Pointer alignment (capped at 16 B) is part of the problem: vectorised kernels found on aligned buffers may not
  // accept a view that starts at an odd element.
  uint64_t bits = reinterpret_cast<uint64_t>(p.x) | reinterpret_cast<uint64_t>(p.w) | reinterpret_cast<uint64_t>(p.y) | 16u;
  int64_t align = int64_t(bits & (~bits + 1));
  std::vector<int64_t> k = {int64_t(p.pass), int64_t(p.dtype), int64_t(p.math), int64_t(conv_algo_policy()),
                            device, align, g.nsp, g.batch, g.in_channels, g.out_channels, g.groups};
  for (const Shape* s : {&g.in, &g.out, &g.kernel, &g.stride, &g.padding, &g.dilation})
    k.insert(k.end(), s->begin(), s->end());
  return k;
}

// Scratch for cudnnFind: as much as fits, up to kMaxFindWorkspace, halving on allocation failure.
struct FindWorkspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device;
  FindWorkspace(size_t want, const Context& ctx) : device(ctx.device.index) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) want = std::min(want, free_b / 2);
    else cudaGetLastError();
    for (bytes = want; bytes >= (size_t(1) << 20); bytes /= 2) {
      try {
        ptr = cuda_caching_alloc(bytes, device, ctx.stream);
        return;
      } catch (const Error&) {
        ptr = nullptr;
      }
    }
    bytes = 0;
  }
  ~FindWorkspace() {
    if (ptr) cuda_caching_free(ptr, device);
  }
};

// Picks an algorithm from a list of perf results (sorted best first by cuDNN).
template <typename Perf>
bool pick(const Perf* perf, int n, size_t limit, Algo* out) {
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > limit) continue;
    out->algo = int(perf[i].algo);
    out->workspace = perf[i].memory;
    out->math = perf[i].mathType;
    return true;
  }
  return false;
}

// find(perf, max, &n, ws, bytes), get(perf, max, &n), max_count(&n), ws_size(algo, &bytes) are the pass's calls.
template <typename Perf, typename Find, typename Get, typename MaxCount, typename WsSize>
Algo choose_pass(const Problem& p, const ConvDesc& cd, const Context& ctx, Find find, Get get, MaxCount max_count,
                 WsSize ws_size) {
  int count = 0;
  STEREORT_CUDNN_CHECK(max_count(&count));
  count = std::max(count, 1);
  std::vector<Perf> perf(static_cast<size_t>(count));
  int n = 0;
  Algo a;
  bool ok = false;
  if (conv_algo_policy() == ConvAlgoPolicy::Find) {
    FindWorkspace ws(kMaxFindWorkspace, ctx);
    STEREORT_CUDNN_CHECK(find(perf.data(), count, &n, ws.ptr, ws.bytes));
    ok = pick(perf.data(), n, ws.bytes, &a);
  } else {
    STEREORT_CUDNN_CHECK(get(perf.data(), count, &n));
    ok = pick(perf.data(), n, kMaxFindWorkspace, &a);
  }
  if (!ok)
    STEREORT_FAIL("cuDNN found no usable algorithm for {} pass {}: x {}, w {}, y {}, groups {}, dtype {}",
                  p.g.nsp == 3 ? "conv3d" : p.g.nsp == 2 ? "conv2d" : "conv1d", int(p.pass), shape_str(p.x_dims),
                  shape_str(p.w_dims), shape_str(p.y_dims), p.g.groups, dtype_name(p.dtype));
  // Strict fp32: never let the chosen algorithm run with TF32 (cuDNN may report DEFAULT math for it).
  if (p.dtype == DType::F32 && p.math == CUDNN_FMA_MATH) a.math = CUDNN_FMA_MATH;
  cd.set_math(a.math);
  size_t need = 0;
  if (ws_size(a.algo, &need) == CUDNN_STATUS_SUCCESS) a.workspace = std::max(a.workspace, need);
  cd.set_math(p.math);
  return a;
}

}  // namespace

Algo choose_algo(const Problem& p, const TensorDesc& xd, const FilterDesc& wd, const TensorDesc& yd,
                 const ConvDesc& cd, const Context& ctx) {
  static std::mutex mu;
  static std::map<std::vector<int64_t>, Algo> cache;
  std::vector<int64_t> key = cache_key(p, ctx.device.index);
  std::lock_guard<std::mutex> lock(mu);  // held through Find: concurrent first calls would benchmark each other
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto h = static_cast<cudnnHandle_t>(ctx.cudnn());
  auto X = xd.get();
  auto W = wd.get();
  auto Y = yd.get();
  auto C = cd.get();
  Algo a;
  switch (p.pass) {
    case Pass::Forward:
      a = choose_pass<cudnnConvolutionFwdAlgoPerf_t>(
          p, cd, ctx,
          [&](cudnnConvolutionFwdAlgoPerf_t* r, int m, int* n, void* ws, size_t b) {
            return cudnnFindConvolutionForwardAlgorithmEx(h, X, p.x, W, p.w, C, Y, p.y, m, n, r, ws, b);
          },
          [&](cudnnConvolutionFwdAlgoPerf_t* r, int m, int* n) {
            return cudnnGetConvolutionForwardAlgorithm_v7(h, X, W, C, Y, m, n, r);
          },
          [&](int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n); },
          [&](int algo, size_t* b) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, X, W, C, Y, cudnnConvolutionFwdAlgo_t(algo), b);
          });
      break;
    case Pass::BackwardData:
      a = choose_pass<cudnnConvolutionBwdDataAlgoPerf_t>(
          p, cd, ctx,
          [&](cudnnConvolutionBwdDataAlgoPerf_t* r, int m, int* n, void* ws, size_t b) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(h, W, p.w, Y, p.y, C, X, p.x, m, n, r, ws, b);
          },
          [&](cudnnConvolutionBwdDataAlgoPerf_t* r, int m, int* n) {
            return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, W, Y, C, X, m, n, r);
          },
          [&](int* n) { return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n); },
          [&](int algo, size_t* b) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, W, Y, C, X, cudnnConvolutionBwdDataAlgo_t(algo),
                                                                b);
          });
      break;
    case Pass::BackwardFilter:
      a = choose_pass<cudnnConvolutionBwdFilterAlgoPerf_t>(
          p, cd, ctx,
          [&](cudnnConvolutionBwdFilterAlgoPerf_t* r, int m, int* n, void* ws, size_t b) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, X, p.x, Y, p.y, C, W, p.w, m, n, r, ws, b);
          },
          [&](cudnnConvolutionBwdFilterAlgoPerf_t* r, int m, int* n) {
            return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, X, Y, C, W, m, n, r);
          },
          [&](int* n) { return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n); },
          [&](int algo, size_t* b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, X, Y, C, W,
                                                                  cudnnConvolutionBwdFilterAlgo_t(algo), b);
          });
      break;
  }
  cache[key] = a;
  return a;
}

}  // namespace dnn
}  // namespace cuda
}  // namespace stereort
#endif  // STEREORT_WITH_CUDNN
