// cuda/conv.cpp — the three convolution primitives on CUDA through cuDNN's legacy API:
//   conv_forward          cudnnConvolutionForward          y  = conv(x, w)
//   conv_backward_data    cudnnConvolutionBackwardData     dx = convᵀ(dy, w)   (also the transposed conv's forward)
//   conv_backward_weight  cudnnConvolutionBackwardFilter   dw = Σ dy ⊗ x
//   All tensors are contiguous NC(D)HW of one dtype (f32, f16, bf16); alpha = 1, beta = 0 (outputs overwritten).
//   The algorithm comes from cuda/dnn.cpp (chosen once per problem, cached); its workspace from ctx.workspace().
//   Builds without cuDNN (STEREORT_WITH_CUDNN=0) compile these as functions that throw a clear error.
#include "core/check.h"
#include "core/context.h"
#include "cuda/dnn.h"
#include "ops/conv.h"

namespace stereort {
namespace cuda {

#if STEREORT_WITH_CUDNN

namespace {

const char* op_name(const ConvGeometry& g) { return g.nsp == 3 ? "conv3d" : g.nsp == 2 ? "conv2d" : "conv1d"; }

// cuDNN derives the conv's output size from x; a transposed conv whose output_padding >= stride yields an x for
// which that size differs from y. The CPU path handles it; cuDNN cannot describe it.
void check_consistent(const ConvGeometry& g) {
  for (int i = 0; i < g.nsp; ++i) {
    size_t j = size_t(i);
    int64_t o = (g.in[j] + 2 * g.padding[j] - g.dilation[j] * (g.kernel[j] - 1) - 1) / g.stride[j] + 1;
    STEREORT_CHECK(o == g.out[j],
                   "{}: the cuDNN path cannot run this problem (input {} -> output {}, kernel {}, stride {}, padding "
                   "{}, dilation {}): for conv_transpose it needs output_padding < stride; run it on the CPU",
                   op_name(g), shape_str(g.in), shape_str(g.out), shape_str(g.kernel), shape_str(g.stride),
                   shape_str(g.padding), shape_str(g.dilation));
  }
}

struct Descs {
  dnn::Problem p;
  dnn::TensorDesc x, y;
  dnn::FilterDesc w;
  dnn::ConvDesc conv;
  Descs(dnn::Pass pass, const ConvGeometry& g, DType dt, void* xp, void* wp, void* yp)
      : p(dnn::make_problem(pass, g, dt, xp, wp, yp)),
        x(dt, p.x_dims),
        y(dt, p.y_dims),
        w(dt, p.w_dims),
        conv(g, p.math) {}
};

}  // namespace

void conv_forward(const Tensor& y, const Tensor& x, const Tensor& w, const ConvGeometry& g, const Context& ctx) {
  check_consistent(g);
  Descs d(dnn::Pass::Forward, g, x.dtype(), x.data_ptr(), w.data_ptr(), y.data_ptr());
  dnn::Algo a = dnn::choose_algo(d.p, d.x, d.w, d.y, d.conv, ctx);
  d.conv.set_math(a.math);
  void* ws = a.workspace ? ctx.workspace(a.workspace) : nullptr;
  float alpha = 1.f, beta = 0.f;
  STEREORT_CUDNN_CHECK(cudnnConvolutionForward(static_cast<cudnnHandle_t>(ctx.cudnn()), &alpha, d.x.get(),
                                               x.data_ptr(), d.w.get(), w.data_ptr(), d.conv.get(),
                                               cudnnConvolutionFwdAlgo_t(a.algo), ws, a.workspace, &beta, d.y.get(),
                                               y.data_ptr()));
}

void conv_backward_data(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                        const Context& ctx) {
  check_consistent(g);
  Descs d(dnn::Pass::BackwardData, g, dy.dtype(), dx.data_ptr(), w.data_ptr(), dy.data_ptr());
  dnn::Algo a = dnn::choose_algo(d.p, d.x, d.w, d.y, d.conv, ctx);
  d.conv.set_math(a.math);
  void* ws = a.workspace ? ctx.workspace(a.workspace) : nullptr;
  float alpha = 1.f, beta = 0.f;
  STEREORT_CUDNN_CHECK(cudnnConvolutionBackwardData(static_cast<cudnnHandle_t>(ctx.cudnn()), &alpha, d.w.get(),
                                                    w.data_ptr(), d.y.get(), dy.data_ptr(), d.conv.get(),
                                                    cudnnConvolutionBwdDataAlgo_t(a.algo), ws, a.workspace, &beta,
                                                    d.x.get(), dx.data_ptr()));
}

void conv_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, const ConvGeometry& g,
                          const Context& ctx) {
  check_consistent(g);
  Descs d(dnn::Pass::BackwardFilter, g, x.dtype(), x.data_ptr(), dw.data_ptr(), dy.data_ptr());
  dnn::Algo a = dnn::choose_algo(d.p, d.x, d.w, d.y, d.conv, ctx);
  d.conv.set_math(a.math);
  void* ws = a.workspace ? ctx.workspace(a.workspace) : nullptr;
  float alpha = 1.f, beta = 0.f;
  STEREORT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(static_cast<cudnnHandle_t>(ctx.cudnn()), &alpha, d.x.get(),
                                                      x.data_ptr(), d.y.get(), dy.data_ptr(), d.conv.get(),
                                                      cudnnConvolutionBwdFilterAlgo_t(a.algo), ws, a.workspace,
                                                      &beta, d.w.get(), dw.data_ptr()));
}

#else  // CUDA without cuDNN

namespace {
[[noreturn]] void no_cudnn(const ConvGeometry& g) {
  STEREORT_FAIL("conv{}d on CUDA needs cuDNN, and this build has STEREORT_WITH_CUDNN=0 (x {}, w {}); reconfigure with "
                "-DSTEREORT_CUDNN=ON (cuDNN 9) or run the convolution on the CPU",
                g.nsp, shape_str(g.x_shape()), shape_str(g.w_shape()));
}
}  // namespace

void conv_forward(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry& g, const Context&) { no_cudnn(g); }
void conv_backward_data(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry& g, const Context&) {
  no_cudnn(g);
}
void conv_backward_weight(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry& g, const Context&) {
  no_cudnn(g);
}

#endif

}  // namespace cuda
}  // namespace stereort
