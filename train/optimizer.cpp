// train/optimizer.cpp — SGD and Adam/AdamW: CPU loops (double math) and dispatch to the fused CUDA kernels.
#include "train/optimizer.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace stereort {

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}
void Optimizer::set_lr(double lr) {
  for (auto& g : groups_) g.lr = lr;
}
void Optimizer::set_beta1(double b1) {
  for (auto& g : groups_) g.beta1 = b1;
}

static std::vector<std::vector<Tensor>> zeros_like_groups(const std::vector<ParamGroup>& groups) {
  std::vector<std::vector<Tensor>> out;
  for (auto& g : groups) {
    out.emplace_back();
    for (auto& p : g.params) out.back().push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
  }
  return out;
}

template <typename F>
static void cpu_each(const Tensor& p, F&& f) {
  // p and its grad are contiguous CPU tensors of any floating dtype; f(i, p_i, g_i) -> new p_i (double math).
  Tensor g = p.grad().contiguous();
  dispatch_all(p.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    for (int64_t i = 0; i < p.numel(); ++i) pp[i] = from_d<T>(f(i, to_d(pp[i]), to_d(gp[i])));
  });
}

SGD::SGD(std::vector<ParamGroup> groups, double momentum, double dampening, bool nesterov)
    : dampening_(dampening), nesterov_(nesterov) {
  groups_ = std::move(groups);
  for (auto& g : groups_) g.beta1 = momentum;
  buf_ = zeros_like_groups(groups_);
}

void SGD::step() {
  NoGradGuard ng;
  bool first = steps_ == 0;
  steps_++;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    std::vector<Tensor> cp, cg, cb;
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor& p = g.params[i];
      if (!p.grad().defined()) continue;
      STEREORT_CHECK(p.is_contiguous(), "SGD: parameter {} is not contiguous", p.desc());
      if (p.is_cuda()) {
        cp.push_back(p); cg.push_back(p.grad().contiguous()); cb.push_back(buf_[gi][i]);
        continue;
      }
      float* b = buf_[gi][i].data<float>();
      double mu = g.beta1, wd = g.weight_decay, lr = g.lr, damp = dampening_;
      bool nest = nesterov_;
      cpu_each(p, [&](int64_t k, double w, double gr) {
        gr += wd * w;
        if (mu != 0) {
          double bk = first ? gr : mu * b[k] + (1 - damp) * gr;
          b[k] = float(bk);
          gr = nest ? gr + mu * bk : bk;
        }
        return w - lr * gr;
      });
    }
    if (!cp.empty())
      STEREORT_CUDA_PATH(cuda::sgd_multi_tensor(cp, cg, cb, float(g.lr), float(g.beta1), float(dampening_),
                                                float(g.weight_decay), nesterov_, first, Context::get(cp[0].device())));
  }
}

std::vector<std::pair<std::string, Tensor>> SGD::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out{{"step", Tensor::scalar(double(steps_), DType::I64)}};
  for (size_t g = 0; g < buf_.size(); ++g)
    for (size_t i = 0; i < buf_[g].size(); ++i)
      out.push_back({fmt::format("state.{}.{}.momentum_buffer", g, i), buf_[g][i]});
  return out;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& sd) {
  auto it = sd.find("step");
  STEREORT_CHECK(it != sd.end(), "SGD::load_state_dict: no 'step' entry");
  steps_ = int64_t(it->second.item());
  for (size_t g = 0; g < buf_.size(); ++g)
    for (size_t i = 0; i < buf_[g].size(); ++i) {
      auto b = sd.find(fmt::format("state.{}.{}.momentum_buffer", g, i));
      STEREORT_CHECK(b != sd.end() && b->second.shape() == buf_[g][i].shape(),
                     "SGD::load_state_dict: state for group {} parameter {} missing or of another shape", g, i);
      buf_[g][i].copy_(b->second);
    }
}

Adam::Adam(std::vector<ParamGroup> groups, double eps, bool decoupled) : eps_(eps), decoupled_(decoupled) {
  groups_ = std::move(groups);
  m_ = zeros_like_groups(groups_);
  v_ = zeros_like_groups(groups_);
}

void Adam::step() {
  NoGradGuard ng;
  steps_++;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    double b1 = g.beta1, b2 = g.beta2, lr = g.lr, wd = g.weight_decay, eps = eps_;
    double bias1 = 1 - std::pow(b1, double(steps_)), bias2 = 1 - std::pow(b2, double(steps_));
    std::vector<Tensor> cp, cg, cm, cv;
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor& p = g.params[i];
      if (!p.grad().defined()) continue;
      STEREORT_CHECK(p.is_contiguous(), "Adam: parameter {} is not contiguous", p.desc());
      if (p.is_cuda()) {
        cp.push_back(p); cg.push_back(p.grad().contiguous()); cm.push_back(m_[gi][i]); cv.push_back(v_[gi][i]);
        continue;
      }
      float* m = m_[gi][i].data<float>();
      float* v = v_[gi][i].data<float>();
      bool dec = decoupled_;
      cpu_each(p, [&](int64_t k, double w, double gr) {
        if (dec) w *= 1 - lr * wd;
        else gr += wd * w;
        double mk = b1 * m[k] + (1 - b1) * gr, vk = b2 * v[k] + (1 - b2) * gr * gr;
        m[k] = float(mk);
        v[k] = float(vk);
        return w - lr / bias1 * mk / (std::sqrt(vk) / std::sqrt(bias2) + eps);
      });
    }
    if (!cp.empty()) {
      [[maybe_unused]] cuda::AdamStep s{float(lr), float(b1), float(b2), float(eps), float(wd), float(bias1), float(bias2), decoupled_};
      STEREORT_CUDA_PATH(cuda::adam_multi_tensor(cp, cg, cm, cv, s, Context::get(cp[0].device())));
    }
  }
}

std::vector<std::pair<std::string, Tensor>> Adam::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out{{"step", Tensor::scalar(double(steps_), DType::I64)}};
  for (size_t g = 0; g < m_.size(); ++g)
    for (size_t i = 0; i < m_[g].size(); ++i) {
      out.push_back({fmt::format("state.{}.{}.exp_avg", g, i), m_[g][i]});
      out.push_back({fmt::format("state.{}.{}.exp_avg_sq", g, i), v_[g][i]});
    }
  return out;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& sd) {
  auto it = sd.find("step");
  STEREORT_CHECK(it != sd.end(), "Adam::load_state_dict: no 'step' entry");
  steps_ = int64_t(it->second.item());
  for (size_t g = 0; g < m_.size(); ++g)
    for (size_t i = 0; i < m_[g].size(); ++i) {
      auto a = sd.find(fmt::format("state.{}.{}.exp_avg", g, i));
      auto b = sd.find(fmt::format("state.{}.{}.exp_avg_sq", g, i));
      STEREORT_CHECK(a != sd.end() && b != sd.end() && a->second.shape() == m_[g][i].shape(),
                     "Adam::load_state_dict: state for group {} parameter {} missing or of another shape", g, i);
      m_[g][i].copy_(a->second);
      v_[g][i].copy_(b->second);
    }
}

double grad_norm(const std::vector<Tensor>& params) {
  // Per-device accumulation of sum(g^2) in float64 scalars, one host read per device at the end.
  NoGradGuard ng;
  std::map<std::string, Tensor> acc;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = p.grad();
    Tensor s = sum(square(g.dtype() == DType::F64 ? g : g.to(DType::F32))).to(DType::F64);
    Tensor& a = acc[g.device().str()];
    a = a.defined() ? add(a, s) : s;
  }
  double total = 0;
  for (auto& kv : acc) total += kv.second.item();
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  double n = grad_norm(params);
  if (!std::isfinite(n) || n <= max_norm) return n;
  NoGradGuard ng;
  double scale = max_norm / (n + 1e-6);
  for (const Tensor& p : params)
    if (p.grad().defined()) p.grad().copy_(mul(p.grad(), scale));
  return n;
}

}  // namespace stereort
