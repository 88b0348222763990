// core/autograd.h — a small eager reverse-mode tape (after flashlight's fl/autograd).
//   Every differentiable op computes eagerly, then, when grad mode is on and an input requires grad, calls
//   record(name, inputs, outputs, backward_fn). The Node keeps one Edge per input (to the input's own grad_fn, or to
//   the leaf tensor that accumulates) and a backward function that maps output gradients to input gradients.
//   Backward functions capture only what they read (detached tensors, sizes); run_backward releases each node's
//   function — and so its saved tensors — as soon as it has run, unless retain_graph is set.
//   Gradients accumulate into leaves (tensor.grad()) across backward calls until zero_grad().
//   Backward functions run under NoGradGuard (no double backward).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {

struct Edge {
  std::shared_ptr<Node> fn;                // producer of the input (non-leaf input)
  int output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;        // accumulator (leaf input that requires grad)
  bool valid() const { return fn || leaf; }
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

// grads[i] is the gradient of output i (zeros when nothing flowed into it). Return one tensor per input, in input
// order; an undefined Tensor where the input gets no gradient.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

struct Node {
  std::string name;
  std::vector<Edge> next;
  std::vector<OutputMeta> outputs;
  BackwardFn backward;
  bool released = false;
};

bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any defined input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);
// Attach a node producing `outputs` from `inputs`; no-op when !needs_grad(inputs). Outputs must be fresh tensors.
void record(const std::string& name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward);
// Reverse pass from `roots` with the given output gradients (undefined = ones for scalars).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph = false);

// ---- gradcheck: central finite differences in float64 on the CPU ---------------------------------------------------
struct GradcheckOptions {
  double eps = 1e-6;     // perturbation (absolute)
  double atol = 1e-8;
  double rtol = 1e-6;
  uint64_t seed = 1234;  // for the random output cotangent
  std::vector<bool> wrt; // which inputs to check (default: all floating inputs)
};
struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0, max_rel_err = 0;  // over all checked elements
  double norm_rel_err = 0;                  // ||analytic - numeric|| / ||numeric|| over all inputs
  std::string report;                       // the worst element per input, and the first failures
};
// f maps inputs to one output. Inputs must be F64 CPU tensors; gradcheck makes its own copies.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace stereort
