// ops/shape_ops.h — concatenation, splitting, padding, flipping, index/gather, where, clamp, masked mean.
//   Forward + backward on CPU and CUDA. PyTorch semantics unless stated; dims may be negative.
//
//   cat(xs, dim)              torch.cat: same dtype/device/rank, sizes equal except at dim. dx_i = g sliced back.
//   split(x, sizes, dim)      views of consecutive pieces; sizes must sum to x.size(dim) (torch.split with a list).
//   chunk(x, n, dim)          torch.chunk: pieces of ceil(size/n), the last smaller; may return fewer than n pieces
//                             (size 7, n 4 -> 2,2,2,1; size 6, n 4 -> 2,2,2); a size-0 dim gives n empty pieces.
//   pad(x, pads, mode, value) F.pad order: pads = (left, right) of the last dim, then (top, bottom) of the one before,
//                             ...; pads.size() even and <= 2*x.dim(). Output size n + left + right per dim (>= 0).
//                             Negative pads crop. Zero mode fills `value` (F.pad mode='constant'); Replicate copies
//                             the edge element (mode='replicate'): out[o] = x[clamp(o - left, 0, n-1)] per padded dim.
//                             Unlike PyTorch, Replicate accepts any rank and any padded dims (PyTorch: last 1-3 dims).
//                             Backward: Zero = pad(g, -pads) (crop the padding, zero-fill what was cropped);
//                             Replicate = for each input element, the sum of g over the box of outputs that copied it.
//   flip(x, dims)             torch.flip (copy). Backward: flip(g, dims).
//   index_select(x, dim, idx) idx 1-D (or 0-D) I64/I32, 0 <= idx < x.size(dim), repeats allowed; output size
//                             idx.numel() at dim. Backward: index_add of g (repeats accumulate).
//   gather(x, dim, index)     torch.gather: index has x's rank, index.size(d) <= x.size(d) for d != dim; output shape =
//                             index shape; out[..i..] = x[.. index[..i..] at dim ..]. Backward: scatter_add of g.
//                             Out-of-range indices: CPU throws. CUDA cannot check without a host sync, so it writes NaN
//                             (0 for integer x) there and ignores them in backward; with STEREORT_SYNC_CHECK=1 it
//                             syncs and throws the same error as the CPU.
//   where(cond, a, b)         cond ? a : b with cond Bool/U8 (or any dtype: != 0), broadcasting all three; a and b
//                             share dtype and device. da = g where cond, db = g elsewhere (reduced to their shapes).
//   clamp(x, lo, hi)          min(max(x, lo), hi) (lo > hi gives hi everywhere, as PyTorch); NaN stays NaN.
//                             Gradient 1 where lo <= x <= hi (edges included, as PyTorch), 0 outside.
//   masked_mean(x, mask)      sum(x * [mask != 0]) / count(mask != 0) over x's elements; mask broadcasts to x.
//                             Scalar of x's dtype; 0 (not NaN) when the mask is empty. Accumulates in fp32 (f64 for
//                             f64); implemented with the masked-reduction kernels of ops/loss.h.
// Dtypes: cat/split/chunk/pad/flip/index_select/gather/where move any dtype on the CPU and f64/f32/f16/bf16/i64 on
// CUDA; clamp and masked_mean need floating x. CUDA kernels: cuda/shape_ops.cu (cat, split, chunk and Zero-pad/flip
// reuse the strided copy of cuda/copy.cu where that is a single pass).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stereort {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);  // views
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim);

enum class PadMode { Zero, Replicate };
// F.pad order: last dim first (left, right, top, bottom, ...); negative pads crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Zero, double value = 0.0);
Tensor flip(const Tensor& x, const std::vector<int64_t>& dims);

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index I64 (or I32) 1-D
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // torch.gather
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond Bool/U8 (or floating != 0), broadcasting
Tensor clamp(const Tensor& x, double lo, double hi);                 // gradient 1 inside [lo, hi], 0 outside
Tensor masked_mean(const Tensor& x, const Tensor& mask);  // mean where mask != 0; scalar; 0 when the mask is empty

// ---- raw helpers (no autograd) used by other ops' backward passes -------------------------------------------------
// The adjoint of gather: zeros of `shape` (g's dtype/device) with g[i] added at index[i] along dim; index has g's
// shape (any strides, stride 0 allowed), I64 or I32. Repeated indices accumulate (fp32 atomics on CUDA for 16-bit g).
Tensor gather_backward_raw(const Tensor& g, int64_t dim, const Tensor& index, const Shape& shape);
// where without autograd (cond as in where()).
Tensor where_raw(const Tensor& cond, const Tensor& a, const Tensor& b);

namespace cuda {
// Pad: out contiguous; x strided (x.dim() == out.dim() <= 8); left[d] = pad before dim d (may be negative).
// mode 0 = Zero (fill `value`), 1 = Replicate.
void pad_forward(const Tensor& out, const Tensor& x, const std::vector<int64_t>& left, int mode, double value,
                 const Context& ctx);
// Replicate backward: dx contiguous (input shape), g contiguous (output shape).
void pad_replicate_backward(const Tensor& dx, const Tensor& g, const std::vector<int64_t>& left, const Context& ctx);
// out (contiguous, shape S) = x[x_off(i) + index[idx_off(i)] * x.stride(dim)], where x and index are views at S
// (x's stride at dim set to 0; the real stride passed as x_dim_stride). Out-of-range -> NaN / 0, flag set if given.
void index_gather(const Tensor& out, const Tensor& x_at_s, const Tensor& index_at_s, int64_t x_dim_stride,
                  int64_t dim_size, int* error_flag, const Context& ctx);
// The adjoint: acc (contiguous, x's shape, f32/f64 accumulator) += g at the same positions (atomics).
void index_scatter_add(const Tensor& acc, const Tensor& g, const Tensor& acc_at_s, const Tensor& index_at_s,
                       int64_t acc_dim_stride, int64_t dim_size, int* error_flag, const Context& ctx);
// out contiguous; cond/a/b views at out's shape. cond u8/bool, f32 or f64.
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b, const Context& ctx);
// x, g contiguous.
void clamp_forward(const Tensor& out, const Tensor& x, double lo, double hi, const Context& ctx);
void clamp_backward(const Tensor& dx, const Tensor& g, const Tensor& x, double lo, double hi, const Context& ctx);
// Flag buffer helpers for the out-of-range checks (device int, zeroed / read back synchronously).
int* alloc_error_flag(const Context& ctx);
int read_and_free_error_flag(int* flag, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
