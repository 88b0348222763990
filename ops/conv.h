// ops/conv.h — convolutions and transposed convolutions (torch.nn.functional.conv{1,2,3}d, conv_transpose{2,3}d).
//   conv1d(x, w, b, p)            x (B,C,L),      w (O,C/g,k)           -> (B,O,L')
//   conv2d(x, w, b, p)            x (B,C,H,W),    w (O,C/g,kh,kw)       -> (B,O,H',W')
//   conv3d(x, w, b, p)            x (B,C,D,H,W),  w (O,C/g,kd,kh,kw)    -> (B,O,D',H',W')
//     y[b,o,i] = b[o] + Σ_{c in group(o), k} x[b,c, i·s - p + k·d] · w[o,c mod C/g,k]  (cross-correlation, zero pad)
//     out size per dim: floor((in + 2p - d·(k-1) - 1) / s) + 1.
//   conv_transpose2d / conv_transpose3d(x, w, b, p)   x (B,C,...), w (C, O/g, k...)  [PyTorch layout: in, out/g, k]
//     the adjoint of conv with the same parameters: y[b,o, i·s - p + k·d] += x[b,c,i] · w[c, o mod O/g, k];
//     out size per dim: (in - 1)·s - 2p + d·(k-1) + output_padding + 1; output_padding < max(s, d) (PyTorch's rule).
//   ConvParams: each vector holds one value (broadcast to every spatial dim) or one per spatial dim. groups divides
//   both channel counts (depthwise: groups = C). output_padding is for conv_transpose only. bias may be undefined.
//   All operands share dtype and device; layout NCHW / NCDHW (inputs of any strides are made contiguous).
// Backward: conv: dx = conv_backward_data(dy, w), dw = conv_backward_weight(dy, x), db = Σ_{b,i} dy.
//   conv_transpose is conv_backward_data of the matching conv, so its forward, dx and dw are that conv's
//   backward_data, forward and backward_weight with x and dy swapped.
// CPU (ops/conv_ref.cpp): direct loops (no im2col), double accumulation, innermost loop along W (contiguous).
// CUDA (cuda/conv.cpp, cuda/dnn.cpp): cuDNN legacy API, algorithm chosen once per problem (cudnnFind*Ex by
//   default) and cached; f32 (strict fp32 unless set_allow_tf32(true)), f16/bf16 with fp32 accumulation; NCHW only
//   (no channels-last path). Builds without cuDNN throw a clear error for CUDA convolutions.
// Reference: PyTorch torch/nn/modules/conv.py (output size formulas, weight layouts, output_padding rule).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace stereort {

struct ConvParams {
  std::vector<int64_t> stride{1}, padding{0}, dilation{1}, output_padding{0};
  int64_t groups = 1;
};

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p = {});
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p = {});
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p = {});
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p = {});
Tensor conv_transpose3d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p = {});

// One convolution problem as the forward (non-transposed) conv sees it: x (batch, in_channels, in...),
// w (out_channels, in_channels/groups, kernel...), y (batch, out_channels, out...). nsp = number of spatial dims.
struct ConvGeometry {
  int nsp = 2;
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  Shape in, out, kernel, stride, padding, dilation;  // nsp values each, outermost first
  Shape x_shape() const;
  Shape w_shape() const;
  Shape y_shape() const;
  double macs() const;  // multiply-adds of one pass (forward = backward-data = backward-weight)
};

// The three primitives on contiguous tensors of one dtype, on the CPU (reference) or CUDA; outputs are overwritten.
void conv_forward_raw(const Tensor& y, const Tensor& x, const Tensor& w, const ConvGeometry& g);
void conv_backward_data_raw(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g);
void conv_backward_weight_raw(const Tensor& dw, const Tensor& dy, const Tensor& x, const ConvGeometry& g);

namespace ref {
// CPU direct loops (T = float or double), double accumulation. Pointers to contiguous buffers.
template <typename T> void conv_forward(T* y, const T* x, const T* w, const ConvGeometry& g);
template <typename T> void conv_backward_data(T* dx, const T* dy, const T* w, const ConvGeometry& g);
template <typename T> void conv_backward_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g);
}  // namespace ref

namespace cuda {
void conv_forward(const Tensor& y, const Tensor& x, const Tensor& w, const ConvGeometry& g, const Context& ctx);
void conv_backward_data(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                        const Context& ctx);
void conv_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, const ConvGeometry& g,
                          const Context& ctx);
// How the cuDNN algorithm of a new problem is chosen: Find = benchmark every algorithm on the real buffers
// (cudnnFind*AlgorithmEx, default; like torch.backends.cudnn.benchmark = True); Heuristic = the first algorithm of
// cudnnGet*Algorithm_v7 that fits the workspace limit (no benchmarking). Each policy has its own cache entries.
enum class ConvAlgoPolicy { Find, Heuristic };
void set_conv_algo_policy(ConvAlgoPolicy p);
ConvAlgoPolicy conv_algo_policy();
}  // namespace cuda

}  // namespace stereort
