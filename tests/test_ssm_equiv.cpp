// tests/test_ssm_equiv.cpp — SSM == masked linear attention (kernels.md §4): the four forms agree, forward and
// backward, in every decay regime; the CPU part is the quick fp64 suite, the GPU part the fp32/bf16 kernels.
// The full tables: `stereort ssm-equiv [--device cpu|cuda]`.
#include <cmath>

#include "ops/elementwise.h"
#include "ops/ssm_equiv.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

static void check_rows(const std::vector<equiv::Row>& rows, size_t min_rows) {
  int64_t fails = 0;
  for (const auto& r : rows) fails += !r.pass;
  INFO("failing rows:\n" << equiv::format_table(rows, true));
  CHECK(fails == 0);
  CHECK(rows.size() >= min_rows);
}

TEST_CASE("ssm equivalence: fp64 forms agree on the CPU (quick suite)") {
  equiv::SuiteOptions o;
  o.quick = true;
  std::vector<equiv::Row> rows = equiv::run_suite(o);
  check_rows(rows, 500);
  // Every form and every regime took part.
  for (const char* pair : {"attn vs rec", "chunk vs rec", "m1 vs rec", "m1sp vs rec", "fd vs chunk", "fd vs attn",
                           "fd vs rec", "fd vs m1"}) {
    bool seen = false;
    for (const auto& r : rows) seen |= r.pair == pair;
    CHECK_MESSAGE(seen, pair);
  }
  for (const char* reg : {"fast", "mamba", "none", "reset", "zerodt"}) {
    bool seen = false;
    for (const auto& r : rows) seen |= r.regime == reg && r.what == "dA";
    CHECK_MESSAGE(seen, reg);
  }
}

TEST_CASE("ssm equivalence: a reset (log a = -1e30) cuts every form's memory exactly and makes no NaN") {
  equiv::Case c;
  c.T = 70, c.P = 8, c.N = 16, c.G = 2, c.regime = equiv::Regime::Reset, c.random_init = true, c.seed = 77;
  equiv::Inputs in = equiv::make_inputs(c);
  REQUIRE(in.reset_steps.size() == 2);
  const int64_t t0 = in.reset_steps[1];
  // Perturb x, B and the initial state before t0: outputs from t0 on must not move (L[t,s] = 0 across t0).
  SsdArgs b = in.args;
  std::vector<double> x = b.x.to_vector();
  for (int64_t i = 0; i < t0 * c.H * c.P; ++i)  // batch 0, steps < t0 (not the zeroed x at the first reset)
    if (x[size_t(i)] != 0.0) x[size_t(i)] += 0.5;
  b.x = Tensor::from_vector(x, b.x.shape(), DType::F64);
  b.initial_state = b.initial_state * 3.0;
  Tensor gy = randn_t(in.args.x.shape());
  for (int64_t Q : {1, 16, 64, 256}) {
    SsdArgs a1 = in.args, a2 = b;
    a1.chunk_size = a2.chunk_size = Q;
    Tensor y1 = equiv::form_chunked(a1, gy, Tensor(), false).y, y2 = equiv::form_chunked(a2, gy, Tensor(), false).y;
    Tensor tail1 = y1.slice(1, t0, c.T), tail2 = y2.slice(1, t0, c.T);
    CAPTURE(Q);
    CHECK(rel_error(tail2, tail1) == 0.0);
    CHECK(rel_error(y2.slice(1, 0, t0), y1.slice(1, 0, t0)) > 1e-3);  // the perturbation did reach earlier steps
    equiv::FormResult g = equiv::form_chunked(a1, gy, randn_t({c.B, c.H, c.P, c.N}), true);
    for (const Tensor& t : {g.y, g.final_state, g.grads.dx, g.grads.ddt, g.grads.dA, g.grads.dBm, g.grads.dCm,
                            g.grads.dDskip, g.grads.dinitial_state})
      for (double v : t.to_vector()) REQUIRE(std::isfinite(v));
  }
  Tensor ya = equiv::form_attention(b, gy, Tensor(), false).y;
  Tensor yr = equiv::form_recurrent(b, gy, Tensor(), false).y;
  expect_close(ya, yr, kTolF64, "attention vs recurrence across resets");
}

TEST_CASE("ssm equivalence: the table flags a wrong form") {
  // A deliberately broken 'form': the chunked scan with A scaled by 1.001 must fail the fp64 bound.
  equiv::Case c;
  c.T = 65;
  equiv::Inputs in = equiv::make_inputs(c);
  SsdArgs bad = in.args;
  bad.A = bad.A * 1.001;
  bad.chunk_size = 16;
  Tensor gy = randn_t(in.args.x.shape());
  Tensor y_ok = equiv::form_recurrent(in.args, gy, Tensor(), false).y;
  Tensor y_bad = equiv::form_chunked(bad, gy, Tensor(), false).y;
  CHECK(rel_error(y_bad, y_ok) > 1e-6);
  std::string row = equiv::format_row(equiv::Row{"x", "y", "f64", 65, 16, 1, 16, 16, "fast", "zero", 1e-3, 1e-3, -1,
                                                  "1e-12", false});
  CHECK(row.find("FAIL") != std::string::npos);
}

TEST_CASE("ssm equivalence: CUDA kernels against fp64 references (quick suite)") {
  STEREORT_REQUIRE_GPU();
  equiv::SuiteOptions o;
  o.device = gpu();
  o.quick = true;
  check_rows(equiv::run_suite(o), 300);
}
