// tests/dense_test_util.h — helpers shared by test_linear, test_conv and test_norm.
//   expect_close_rms(got, ref, rtol, name): elementwise |got-ref| <= rtol·(|ref| + rms(ref)), i.e. expect_close with
//     atol = rtol·rms(ref). Why: a GEMM/conv/norm output is a sum of many terms; where the terms cancel, the output is
//     near zero but its rounding error is that of the terms (≈ eps·sqrt(K)·rms), so a pure relative test would flag
//     correct results and an absolute floor tied to the tensor's scale is the honest bound. The normwise relative
//     error is checked against rtol as well.
//   poison_cuda_cache(nbytes): fill a few free blocks of the CUDA caching allocator's size class for nbytes with 0xFF
//     (NaN in f32/f16/bf16), so the op's freshly allocated output (and, before backward, each gradient) starts as
//     NaN — outputs we do not allocate ourselves are still poisoned before the kernel runs.
//   check_gpu_vs_cpu(f, inputs, dt, rtol, name): runs f on CUDA copies of `inputs` (rounded to dt, or to the dtype
//     given per input) and on float64 CPU copies of the same rounded values; compares the output and the gradient of
//     every floating input for a random cotangent (also rounded to dt).
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"
#include "ops/init.h"
#include "test_util.h"

namespace stereort {
namespace test {

inline CloseReport expect_close_rms(const Tensor& got, const Tensor& ref, double rtol, const std::string& name) {
  std::vector<double> r = ref.to_vector();
  double s = 0;
  for (double v : r) s += v * v;
  double rms = r.empty() ? 0.0 : std::sqrt(s / double(r.size()));
  CloseReport rep = expect_close(got, ref, rtol, rtol * rms + 1e-300, name);
  INFO(name << ": norm rel err " << rep.norm_rel);
  CHECK(rep.norm_rel <= rtol);
  return rep;
}

inline void poison_cuda_cache(size_t nbytes, int count = 3) {
  if (nbytes == 0) return;
  std::vector<Tensor> blocks;
  for (int i = 0; i < count; ++i) {
    blocks.push_back(Tensor::empty({int64_t(nbytes)}, DType::U8, gpu()));
    blocks.back().fill_(255.0);
  }
}  // blocks return to the cache here, NaN-filled

inline void check_gpu_vs_cpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                             const std::vector<Tensor>& inputs, DType dt, double rtol, const std::string& name,
                             const std::vector<DType>& dtypes = {}, bool grads = true) {
  std::vector<Tensor> gi, ci;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      gi.emplace_back();
      ci.emplace_back();
      continue;
    }
    DType d = i < dtypes.size() ? dtypes[i] : dt;
    Tensor q = inputs[i].detach().to(d);
    Tensor g = q.to(gpu()), c = q.to(DType::F64);
    if (grads) {
      g.set_requires_grad(true);
      c.set_requires_grad(true);
    }
    gi.push_back(g);
    ci.push_back(c);
  }
  Tensor co = f(ci);
  poison_cuda_cache(size_t(co.numel()) * dtype_size(dt));
  Tensor go = f(gi);
  CHECK(go.is_cuda());
  CHECK(go.dtype() == dt);
  expect_close_rms(go, co, rtol, name + " forward");
  if (!grads) return;
  Tensor gout = randn(co.shape(), DType::F64, Device::cpu(), 0x51ed + co.numel()).to(dt);
  for (const Tensor& t : gi)  // the gradients are fresh allocations too
    if (t.defined()) poison_cuda_cache(size_t(t.numel()) * dtype_size(t.dtype()));
  go.backward(gout.to(gpu()));
  co.backward(gout.to(DType::F64));
  for (size_t i = 0; i < gi.size(); ++i) {
    if (!gi[i].defined()) continue;
    INFO(name << ": gradient of input " << i);
    REQUIRE(gi[i].grad().defined());
    CHECK(gi[i].grad().is_cuda());
    expect_close_rms(gi[i].grad(), ci[i].grad(), rtol, name + " grad[" + std::to_string(i) + "]");
  }
}

}  // namespace test
}  // namespace stereort
