// core/autograd.cpp — the tape: record(), run_backward() (Kahn topological walk), gradcheck().
#include "core/autograd.h"

#include <cmath>
#include <unordered_map>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/reduce.h"

namespace stereort {

static thread_local bool t_grad_enabled = true;
bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::string& name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(backward);
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn()) {
        e.fn = t.grad_fn();
        e.output_nr = t.impl()->output_nr;
      } else {
        e.leaf = t.impl_ptr();
      }
    }
    node->next.push_back(e);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    node->outputs.push_back({o.shape(), o.dtype(), o.device()});
    TensorImpl* impl = o.impl();
    STEREORT_CHECK(!impl->grad_fn && !impl->requires_grad,
                   "autograd: op '{}' output {} already has history; ops must return fresh tensors", name, i);
    impl->grad_fn = node;
    impl->output_nr = int(i);
    impl->requires_grad = true;
  }
}

// Add g into slot (cast to the expected dtype, shape-checked).
static void accumulate(Tensor& slot, Tensor g, const OutputMeta& meta, const std::string& where) {
  STEREORT_CHECK(g.shape() == meta.shape, "autograd: gradient for {} has shape {} but the tensor has shape {}", where,
                 shape_str(g.shape()), shape_str(meta.shape));
  if (g.dtype() != meta.dtype) g = g.to(meta.dtype);
  if (g.device() != meta.device) g = g.to(meta.device);
  slot = slot.defined() ? add(slot, g) : g;
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  STEREORT_CHECK(roots.size() == grads.size(), "backward: {} roots but {} gradients", roots.size(), grads.size());
  NoGradGuard no_grad;
  // Seed gradients.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<std::shared_ptr<Node>> seeds;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    STEREORT_CHECK(r.requires_grad(), "backward: tensor {} does not require grad (no op recorded it); "
                   "set requires_grad on a leaf it depends on, outside NoGradGuard", r.desc());
    Tensor g = grads[i];
    if (!g.defined()) {
      STEREORT_CHECK(r.numel() == 1, "backward: tensor {} is not a scalar; pass a gradient of the same shape",
                     r.desc());
      g = Tensor::ones(r.shape(), r.dtype(), r.device());
    }
    OutputMeta meta{r.shape(), r.dtype(), r.device()};
    if (!r.grad_fn()) {  // a leaf root
      Tensor acc(r.impl()->grad);
      accumulate(acc, g, meta, "leaf " + r.desc());
      r.impl()->grad = acc.contiguous().impl_ptr();
      continue;
    }
    Node* n = r.grad_fn().get();
    auto& buf = buffers[n];
    buf.resize(n->outputs.size());
    accumulate(buf[r.impl()->output_nr], g, meta, "output of " + n->name);
    seeds.push_back(r.grad_fn());
  }
  // Dependency counts over the reachable graph.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (auto& s : seeds)
    if (!seen[s.get()]) { seen[s.get()] = true; stack.push_back(s.get()); }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.fn) continue;
      deps[e.fn.get()]++;
      if (!seen[e.fn.get()]) { seen[e.fn.get()] = true; stack.push_back(e.fn.get()); }
    }
  }
  // Kahn walk from the seeds that nothing else feeds.
  std::vector<std::shared_ptr<Node>> ready;
  for (auto& s : seeds)
    if (deps[s.get()] == 0) {
      bool dup = false;
      for (auto& r : ready) dup |= r == s;
      if (!dup) ready.push_back(s);
    }
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.back();
    ready.pop_back();
    STEREORT_CHECK(!node->released, "backward: the graph through '{}' was already released by an earlier backward; "
                   "pass retain_graph=true to the first call", node->name);
    auto& buf = buffers[node.get()];
    buf.resize(node->outputs.size());
    for (size_t i = 0; i < buf.size(); ++i)
      if (!buf[i].defined())
        buf[i] = Tensor::zeros(node->outputs[i].shape, node->outputs[i].dtype, node->outputs[i].device);
    std::vector<Tensor> in_grads = node->backward(buf);
    buffers.erase(node.get());
    STEREORT_CHECK(in_grads.size() == node->next.size(), "backward of '{}' returned {} gradients for {} inputs",
                   node->name, in_grads.size(), node->next.size());
    if (!retain_graph) {
      node->backward = nullptr;  // frees the saved tensors now
      node->released = true;
    }
    for (size_t i = 0; i < node->next.size(); ++i) {
      const Edge& e = node->next[i];
      if (!e.valid() || !in_grads[i].defined()) {
        if (e.fn && --deps[e.fn.get()] == 0) ready.push_back(e.fn);
        continue;
      }
      if (e.leaf) {
        OutputMeta meta{e.leaf->shape, e.leaf->dtype, e.leaf->storage->device};
        Tensor acc(e.leaf->grad);
        std::string where = "input " + std::to_string(i) + " of '" + node->name + "'";
        accumulate(acc, in_grads[i], meta, where);
        e.leaf->grad = acc.contiguous().impl_ptr();
      } else {
        auto& nb = buffers[e.fn.get()];
        nb.resize(e.fn->outputs.size());
        accumulate(nb[e.output_nr], in_grads[i], e.fn->outputs[e.output_nr],
                   "input " + std::to_string(i) + " of '" + node->name + "'");
        if (--deps[e.fn.get()] == 0) ready.push_back(e.fn);
      }
    }
  }
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const { run_backward({*this}, {grad}, retain_graph); }

// ---- gradcheck -------------------------------------------------------------------------------------------------------
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult res;
  std::vector<Tensor> xs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    STEREORT_CHECK(!t.defined() || (t.device().is_cpu()), "gradcheck: input {} must be a CPU tensor, got {}", i,
                   t.desc());
    Tensor c = t.defined() ? t.detach().clone() : Tensor();
    bool check = c.defined() && dtype_is_floating(c.dtype()) && (opt.wrt.empty() || (i < opt.wrt.size() && opt.wrt[i]));
    if (check) {
      STEREORT_CHECK(c.dtype() == DType::F64, "gradcheck: input {} is {}; use F64 inputs for finite differences", i,
                     c.desc());
      c.set_requires_grad(true);
    }
    xs.push_back(c);
  }
  Tensor out = f(xs);
  Tensor gout = randn(out.shape(), DType::F64, Device::cpu(), opt.seed);
  if (!out.requires_grad()) {
    res.ok = false;
    res.report = "gradcheck: the output does not require grad (nothing was recorded)";
    return res;
  }
  out.backward(gout);
  auto loss_of = [&]() {
    NoGradGuard ng;
    Tensor o = f(xs);
    return sum(mul(o.to(DType::F64), gout)).item();
  };
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor x = xs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor ga = x.grad();
    std::vector<double> analytic = ga.defined() ? ga.to_vector() : std::vector<double>(size_t(x.numel()), 0.0);
    double* p = x.data<double>();
    double worst = -1;
    int64_t worst_j = -1;
    double worst_a = 0, worst_n = 0;
    int fails = 0;
    for (int64_t j = 0; j < x.numel(); ++j) {
      double saved = p[j];
      p[j] = saved + opt.eps;
      double fp = loss_of();
      p[j] = saved - opt.eps;
      double fm = loss_of();
      p[j] = saved;
      double num = (fp - fm) / (2 * opt.eps);
      double a = analytic[size_t(j)];
      double d = std::fabs(a - num);
      err2 += d * d;
      ref2 += num * num;
      res.max_abs_err = std::max(res.max_abs_err, d);
      res.max_rel_err = std::max(res.max_rel_err, d / std::max(std::fabs(num), 1e-300));
      // Central differences carry rounding noise of about eps_machine * |loss| / eps; allow 5x that.
      double fd_noise = 1e-15 * std::max(std::fabs(fp), std::fabs(fm)) / opt.eps;
      if (!(d <= opt.atol + fd_noise + opt.rtol * std::fabs(num))) {
        res.ok = false;
        if (fails++ < 3) res.report += fmt::format("  input {} element {}: analytic {:.10g} numeric {:.10g}\n", i, j, a, num);
      }
      if (d > worst) { worst = d; worst_j = j; worst_a = a; worst_n = num; }
    }
    res.report += fmt::format("input {} {}: worst element {} analytic {:.10g} numeric {:.10g} (|diff| {:.3g}){}\n", i,
                              shape_str(x.shape()), worst_j, worst_a, worst_n, worst, fails ? " FAIL" : "");
  }
  res.norm_rel_err = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  return res;
}

}  // namespace stereort
