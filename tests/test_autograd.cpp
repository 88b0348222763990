// tests/test_autograd.cpp — the tape: hand-derived gradients, gradcheck, accumulation, NoGradGuard, graph release,
// multi-use of a tensor, views in the graph.
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("autograd of a small graph matches hand-derived gradients") {
  // f(a, b) = sum(exp(a) * b + a / b), a, b (2,3)
  Tensor a = rand_t({2, 3}).set_requires_grad(), b = rand_t({2, 3}, DType::F64, 0.5, 2.0).set_requires_grad();
  Tensor f = sum(add(mul(exp(a), b), div(a, b)));
  f.backward();
  std::vector<double> av = a.to_vector(), bv = b.to_vector(), ga = a.grad().to_vector(), gb = b.grad().to_vector();
  for (size_t i = 0; i < av.size(); ++i) {
    CHECK(ga[i] == doctest::Approx(std::exp(av[i]) * bv[i] + 1.0 / bv[i]).epsilon(1e-14));
    CHECK(gb[i] == doctest::Approx(std::exp(av[i]) - av[i] / (bv[i] * bv[i])).epsilon(1e-14));
  }
}

TEST_CASE("gradcheck: elementwise, broadcasting, reductions, matmul, views") {
  check_grad([](const std::vector<Tensor>& x) { return mul(add(x[0], x[1]), sub(x[0], x[1])); },
             {rand_t({3, 1, 5}), rand_t({4, 1})}, "broadcast add/sub/mul");
  check_grad([](const std::vector<Tensor>& x) { return div(x[0], add(square(x[1]), 1.0)); },
             {rand_t({2, 3}), rand_t({3})}, "div");
  check_grad([](const std::vector<Tensor>& x) { return sqrt(add(exp(x[0]), 0.5)); }, {rand_t({7})}, "sqrt/exp");
  check_grad([](const std::vector<Tensor>& x) { return log(pow(add(abs(x[0]), 0.5), 2.5)); }, {rand_t({5})},
             "log/pow/abs");
  check_grad([](const std::vector<Tensor>& x) { return rsqrt(add(square(x[0]), 0.3)); }, {rand_t({4})}, "rsqrt");
  check_grad([](const std::vector<Tensor>& x) { return sum(x[0], {1}, true); }, {rand_t({3, 4, 5})}, "sum keepdim");
  check_grad([](const std::vector<Tensor>& x) { return mean(x[0], {0, 2}); }, {rand_t({3, 4, 5})}, "mean");
  check_grad([](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {rand_t({2, 3, 4}), rand_t({4, 5})},
             "matmul batched x 2-D");
  check_grad([](const std::vector<Tensor>& x) { return matmul(x[0], x[1].transpose(-1, -2)); },
             {rand_t({2, 1, 3, 4}), rand_t({3, 5, 4})}, "matmul broadcast batch, transposed view");
  check_grad([](const std::vector<Tensor>& x) {
    return x[0].permute({2, 0, 1}).slice(0, 1, 5, 2).reshape({2, -1}).expand({3, 2, 6}).select(2, 4);
  }, {rand_t({2, 3, 5})}, "view chain");
  check_grad([](const std::vector<Tensor>& x) { return maximum(x[0], x[1]); }, {rand_t({6}), rand_t({6})}, "maximum");
}

TEST_CASE("gradients accumulate over two backward calls and reset with zero_grad") {
  Tensor w = rand_t({3}).set_requires_grad();
  Tensor x = rand_t({3});
  sum(mul(w, x)).backward();
  sum(mul(w, x)).backward();
  expect_close(w.grad(), mul(x, 2.0), kTolF64, "2x accumulated");
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  sum(mul(w, 3.0)).backward();
  expect_close(w.grad(), Tensor::full({3}, 3.0, DType::F64), kTolF64, "after zero_grad");
}

TEST_CASE("a tensor used twice gets both contributions; backward with a given gradient") {
  Tensor a = rand_t({4}).set_requires_grad();
  Tensor y = mul(a, a);  // dy/da = 2a
  Tensor g = rand_t({4});
  y.backward(g);
  expect_close(a.grad(), mul(mul(a.detach(), g), 2.0), kTolF64, "2 a g");
}

TEST_CASE("NoGradGuard records nothing; detach cuts history") {
  Tensor a = rand_t({3}).set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = exp(a);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(bool(y.grad_fn()));
  }
  CHECK(grad_enabled());
  Tensor y = exp(a);
  CHECK(y.requires_grad());
  CHECK(y.grad_fn()->name == "exp");
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK((d.storage() == y.storage()));
}

TEST_CASE("saved tensors are released after backward unless retain_graph") {
  Tensor a = rand_t({3}).set_requires_grad();
  Tensor y = sum(exp(a));
  std::weak_ptr<StorageImpl> saved;
  {
    // exp saves its output; hold a weak reference to that storage through the node of y's input.
    Tensor e = exp(a);
    saved = e.storage();
    Tensor s = sum(e);
    e = Tensor();
    CHECK_FALSE(saved.expired());  // alive: the exp node saved it
    s.backward();
    CHECK(saved.expired());        // released as backward passed the node
  }
  a.zero_grad();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // second pass works with retained graph
  expect_close(a.grad(), mul(exp(a.detach()), 2.0), kTolF64, "two passes");
  expect_error([&] { y.backward(); }, {"already released", "retain_graph"});
}

TEST_CASE("backward errors name the problem") {
  Tensor a = rand_t({3});
  expect_error([&] { sum(a).backward(); }, {"does not require grad"});
  Tensor b = rand_t({3}).set_requires_grad();
  expect_error([&] { exp(b).backward(); }, {"not a scalar", "(3)"});
  expect_error([&] { exp(b).set_requires_grad(false); }, {"not a leaf", "exp"});
}
