// ops/ssm_equiv.h — the SSM == masked linear attention equivalence suite (kernels.md §4), shared by
// tests/test_ssm_equiv.cpp and `stereort ssm-equiv`.
//   Four forms of one scalar-decay SSM (per head: log a_t = dt_t A, S_t = a_t S_{t-1} + dt_t B_t x_t^T,
//   y_t = S_t^T C_t + D x_t), each forward and backward:
//     (1) rec    the recurrence (ref::ssd_recurrent) and its recurrent adjoint (ref::ssd_recurrent_backward);
//     (2) attn   the materialised masked attention Y = (L o C B^T) X + D X: ref::ssd_attention (plain loops) for y, and
//                for gradients the same formula built from differentiable ops (stable masked segment sums through a
//                triangular matmul, -inf above the diagonal before exp), differentiated by the autograd tape;
//     (3) chunk  ssd_chunk_scan with chunk Q (CPU: ref::ssd_chunked + chunked adjoint; CUDA: the kernels);
//     (4) m1     the Mamba-1 selective scan with A and dt broadcast over the state (kernels.md §3 mapping:
//                u (B,H*P,T) h-major, delta = dt repeated over p, A[(h,p),n] = A_h, B/C (B,G,N,T), D repeated).
//   Inputs (seeded Philox, identical on CPU and GPU): x ~ N(0,1); B, C ~ N(0,1)/sqrt(N); D ~ N(0,1); A_h = -U(1,16).
//   Regimes: fast dt = softplus(N(0,1) - 1); mamba dt = exp(U(log 1e-3, log 1e-1)); none A = 0 (L = tril(dt));
//   reset: at steps t0, dt = 1e30 / |A_h| so log a = -1e30 exactly, with x_t0 = 0 (no 1e30-sized input; every form
//   must give L[t,s] = 0 across t0 and no NaN); zerodt: dt = 0 at every 5th step and a run of 3 (state passes).
//   Error: relative error ||out - ref||_2 / ||ref||_2 over the whole tensor, max |out - ref| and its index; a
//   non-finite value where the reference is finite fails. In the reset regime dx is reported on two row sets: the
//   reset steps (dx = dt dX̄ ~ 1e30) and the rest, so the huge entries cannot hide errors elsewhere.
//   Bounds (kernels.md §4): fp64 forms against (1), outputs, final states and gradients <= 1e-12; fp64 central
//   differences on tiny cases (T 8, N 2, P 2) <= 1e-6; fp32 CUDA vs the fp64 recurrence on the fp32-rounded inputs
//   <= 1e-5 (outputs, final states); fp32 CUDA gradients: mamba's per-output (rtol, atol) element-wise; bf16 CUDA
//   <= 1e-2 relative. CUDA rows list the chunk length the kernels ran (they cap Q at 32; Q >= T means min(T, 32)).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/shape.h"
#include "ops/ssd.h"

namespace stereort {
namespace equiv {

enum class Regime { Fast, MambaInit, NoDecay, Reset, ZeroDt };
const char* regime_name(Regime r);

struct Case {
  int64_t B = 2, H = 4, P = 16, N = 16, G = 1, T = 64;
  Regime regime = Regime::Fast;
  bool random_init = false;
  uint64_t seed = 1;
};
// f64 CPU inputs for a case (initial_state undefined for a zero initial state); reset_steps lists the t0.
struct Inputs {
  SsdArgs args;
  std::vector<int64_t> reset_steps;
};
Inputs make_inputs(const Case& c);

// One form's outputs and (when asked) gradients of sum(y * gy) + sum(final_state * gS).
struct FormResult {
  Tensor y, final_state;
  SsdGrads grads;
};
// gy (B,L,H,P), gS (B,H,P,N) or undefined; grads only when `grads` is true. Results on the CPU in f64.
FormResult form_recurrent(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads);
FormResult form_attention(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads);  // grads: L <= ~256
FormResult form_chunked(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads);   // on a.x's device
FormResult form_mamba1(const SsdArgs& a, const Tensor& gy, bool grads);  // zero initial state, no final state
// The differentiable building blocks of the forms (recorded on the autograd tape; f64 CPU inputs):
//   recurrent_op     ref::ssd_recurrent with ref::ssd_recurrent_backward as its backward (y and final state);
//   attention_graph  Y = (L o C B^T) X + D X (+ initial-state term) and the final state, from ordinary ops;
//   mamba1_mapped    y of the Mamba-1 scan under the kernels.md §3 mapping (zero initial state).
SsdResult recurrent_op(const SsdArgs& a);
SsdResult attention_graph(const SsdArgs& a);
Tensor mamba1_mapped(const SsdArgs& a);

struct Row {
  std::string pair;    // "chunk vs rec", "cuda chunk vs rec", "fd vs chunk", ...
  std::string what;    // "y", "final", "dx", "ddt", "dA", "dB", "dC", "dD", "dS0", "dx@reset", "grad"
  std::string dtype;   // "f64", "f32", "bf16"
  int64_t T = 0, Q = 0, G = 0, N = 0, P = 0;  // Q = 0: not applicable
  std::string regime, init;
  double rel = 0, max_abs = 0;
  int64_t worst = -1;
  std::string bound;   // "1e-12" or "(rtol 6e-4, atol 2e-3)"
  bool pass = true;
};

struct SuiteOptions {
  Device device = Device::cpu();  // cpu: the fp64 suite; cuda: the fp32/bf16 kernels against fp64 references
  bool quick = false;             // the CI subset (CPU well under 30 s in Release on one core)
  std::function<void(const Row&)> on_row;  // called as each row is produced (progress printing)
};
std::vector<Row> run_suite(const SuiteOptions& opt);

// Fixed-width table with a header; only_failures prints the failing rows (plus a count line).
std::string format_table(const std::vector<Row>& rows, bool only_failures = false);
std::string format_row(const Row& r);
std::string table_header();

}  // namespace equiv
}  // namespace stereort
