// tests/test_tensor.cpp — views share storage and honour strides/offsets; copies; dtype round trips; printing.
#include "core/check.h"
#include "ops/elementwise.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("views share storage and honour strides and offsets") {
  Tensor x = Tensor::arange(24, DType::F32).reshape({2, 3, 4});
  CHECK(x.is_contiguous());
  CHECK(x.strides() == Shape{12, 4, 1});

  Tensor p = x.permute({2, 0, 1});  // (4,2,3)
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK((p.storage() == x.storage()));
  CHECK_FALSE(p.is_contiguous());
  // p[k, i, j] = x[i, j, k] = 12 i + 4 j + k
  std::vector<double> pv = p.to_vector();
  CHECK(pv[size_t(1 * 6 + 1 * 3 + 2)] == 12 + 8 + 1);

  Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.offset() == 1);
  CHECK(s.strides() == Shape{12, 4, 2});
  CHECK(s.to_vector() == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});

  Tensor sel = x.select(1, -1);  // x[:, 2, :]
  CHECK(sel.shape() == Shape{2, 4});
  CHECK(sel.offset() == 8);
  CHECK(sel.to_vector() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});

  // Writing through a view changes the base.
  s.fill_(-1);
  CHECK(x.to_vector()[1] == -1);
  CHECK(x.to_vector()[3] == -1);
  CHECK(x.to_vector()[2] == 2);

  Tensor e = Tensor::arange(3, DType::F32).reshape({3, 1}).expand({3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(e.to_vector() == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});

  Tensor t = x.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  Tensor tc = t.contiguous();
  CHECK(tc.is_contiguous());
  CHECK((tc.storage() != x.storage()));
  CHECK(tc.to_vector() == t.to_vector());

  // reshape of a non-viewable layout copies; of a viewable one does not.
  CHECK((x.reshape({6, 4}).storage() == x.storage()));
  CHECK((t.reshape({24}).storage() != x.storage()));
  CHECK(x.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
}

TEST_CASE("view errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 4});
  expect_error([&] { x.view({5, 5}); }, {"view", "(5,5)", "(2,3,4)"});
  expect_error([&] { x.transpose(0, 1).view({24}); }, {"view", "reshape"});
  expect_error([&] { x.permute({0, 0, 1}); }, {"permute", "repeated"});
  expect_error([&] { x.expand({2, 5, 4}); }, {"expand", "(2,3,4)", "(2,5,4)"});
  expect_error([&] { x.select(1, 3); }, {"select", "out of range", "(2,3,4)"});
  expect_error([&] { x.size(3); }, {"size", "out of range"});
}

TEST_CASE("dtype conversions round trip and round to nearest even") {
  Tensor a = Tensor::from_vector({1.0, -2.5, 65504.0, 1e-8, 3.14159, 70000.0}, {6}, DType::F64);
  Tensor h = a.to(DType::F16).to(DType::F64);
  std::vector<double> hv = h.to_vector();
  CHECK(hv[0] == 1.0);
  CHECK(hv[1] == -2.5);
  CHECK(hv[2] == 65504.0);
  CHECK(hv[3] == doctest::Approx(1e-8).epsilon(0.1));  // subnormal half
  CHECK(hv[4] == 3.140625);
  CHECK(std::isinf(hv[5]));
  Tensor b = a.to(DType::BF16).to(DType::F32);
  CHECK(b.to_vector()[4] == 3.140625);
  CHECK(float_to_half_bits(1.0f + 1.0f / 2048) == 0x3c00);  // tie -> even
  CHECK(float_to_half_bits(1.0f + 3.0f / 2048) == 0x3c02);
  CHECK(float_to_bf16_bits(1.0f + 1.0f / 256) == 0x3f80);
  Tensor i = Tensor::from_vector({1, 2, 300}, {3}, DType::I64).to(DType::U8);
  CHECK(i.to_vector()[1] == 2);
}

TEST_CASE("item, printing and factories") {
  Tensor s = Tensor::scalar(3.5);
  CHECK(s.item() == 3.5);
  CHECK(s.dim() == 0);
  Tensor z = Tensor::full({2, 2}, 7, DType::I32);
  CHECK(z.to_vector() == std::vector<double>{7, 7, 7, 7});
  std::string str = Tensor::arange(40, DType::F32).reshape({4, 10}).str();
  CHECK(str.find("f32 cpu (4,10)") != std::string::npos);
  CHECK(str.find("...") != std::string::npos);
  expect_error([&] { Tensor::zeros({2}).item(); }, {"item", "2 elements"});
  expect_error([&] { Tensor t; t.shape(); }, {"undefined"});
}

TEST_CASE("to(device) round trip [gpu]") {
  STEREORT_REQUIRE_GPU();
  Tensor a = rand_t({3, 5, 7}, DType::F32);
  Tensor g = a.cuda();
  CHECK(g.is_cuda());
  expect_close(g.cpu(), a, 0, 0, "h2d2h");
  Tensor gp = g.permute({2, 0, 1}).contiguous();
  expect_close(gp.cpu(), a.permute({2, 0, 1}).contiguous(), 0, 0, "permute on GPU");
  Tensor gh = g.slice(1, 1, 5, 2).to(DType::F16).cpu();
  expect_close(gh, a.slice(1, 1, 5, 2).to(DType::F16), 0, 0, "strided cast on GPU");
  Tensor big = rand_t({1000}, DType::F64).cuda().to(DType::BF16).cpu();
  CHECK(big.dtype() == DType::BF16);
}
