// cuda/dnn.h — cuDNN helpers for cuda/conv.cpp (CUDA + cuDNN builds only): RAII descriptors for NCHW/NCDHW tensors,
// filters and convolutions built from a ConvGeometry, and the per-problem algorithm choice with its cache.
//   conv1d problems are described to cuDNN as 2-D with H = 1 (cuDNN's legacy API needs >= 2 spatial dims).
//   Math: f32 -> CUDNN_FMA_MATH (strict fp32; cuDNN's default math would allow TF32 on Hopper), f32 with
//   allow_tf32() -> CUDNN_DEFAULT_MATH, f16/bf16 -> CUDNN_TENSOR_OP_MATH; the convolution's compute type is always
//   CUDNN_DATA_FLOAT (fp32 accumulation).
//   Algorithm: chosen once per problem (pass, dtype, math, policy, device, pointer alignment, every size and
//   parameter) and cached for the process: ConvAlgoPolicy::Find runs cudnnFind*AlgorithmEx on the caller's buffers
//   (the pass's output is overwritten, which the caller does anyway) with up to kMaxFindWorkspace bytes of scratch;
//   Heuristic takes the first fitting result of cudnnGet*Algorithm_v7. With strict fp32 the chosen algorithm's math is forced to FMA
//   (PyTorch does the same), so TF32 never sneaks in.
#pragma once
#if STEREORT_WITH_CUDNN
#include <cudnn.h>

#include <cstddef>

#include "core/context.h"
#include "ops/conv.h"

namespace stereort {
namespace cuda {
namespace dnn {

constexpr size_t kMaxFindWorkspace = size_t(1) << 30;  // 1 GiB; halved on allocation failure

cudnnDataType_t data_type(DType t, const char* op);

class TensorDesc {
 public:
  TensorDesc(DType t, const Shape& dims);  // contiguous NC(D)HW
  ~TensorDesc();
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

class FilterDesc {
 public:
  FilterDesc(DType t, const Shape& dims);
  ~FilterDesc();
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  cudnnFilterDescriptor_t get() const { return d_; }

 private:
  cudnnFilterDescriptor_t d_ = nullptr;
};

class ConvDesc {
 public:
  ConvDesc(const ConvGeometry& g, cudnnMathType_t math);
  ~ConvDesc();
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t get() const { return d_; }
  void set_math(cudnnMathType_t m) const;

 private:
  cudnnConvolutionDescriptor_t d_ = nullptr;
};

enum class Pass { Forward, BackwardData, BackwardFilter };

// Everything cuDNN needs for one pass: descriptors in cuDNN's shapes plus the device pointers.
struct Problem {
  Pass pass;
  ConvGeometry g;
  DType dtype;
  cudnnMathType_t math;
  Shape x_dims, w_dims, y_dims;  // as described to cuDNN (conv1d padded to 2-D)
  void* x;                       // input (Forward, BackwardFilter) or dx (BackwardData)
  void* w;                       // weight, or dw (BackwardFilter)
  void* y;                       // output (Forward) or dy (BackwardData, BackwardFilter)
};
Problem make_problem(Pass pass, const ConvGeometry& g, DType dtype, void* x, void* w, void* y);

struct Algo {
  int algo = 0;             // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;     // bytes
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

// The algorithm for this problem under the current ConvAlgoPolicy (cached); runs Find on first use.
Algo choose_algo(const Problem& p, const TensorDesc& xd, const FilterDesc& wd, const TensorDesc& yd,
                 const ConvDesc& cd, const Context& ctx);

}  // namespace dnn
}  // namespace cuda
}  // namespace stereort
#endif  // STEREORT_WITH_CUDNN
