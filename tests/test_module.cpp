// tests/test_module.cpp — Module: PyTorch key order, strict/non-strict loading with reports, device/dtype moves,
// freezing, parameter counts.
#include "models/module.h"
#include "ops/elementwise.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {
struct Leaf : Module {
  Tensor weight = rand_t({3, 2}, DType::F32), bias = rand_t({3}, DType::F32), count = Tensor::zeros({}, DType::I64);
  Leaf() {
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
    register_buffer("num_batches_tracked", &count);
  }
};
struct Net : Module {
  Leaf a, b;
  Tensor scale = rand_t({1}, DType::F32);
  std::vector<std::unique_ptr<Leaf>> blocks;
  Net() {
    register_parameter("scale", &scale);
    register_module("a", &a);
    for (int i = 0; i < 2; ++i) {
      blocks.emplace_back(new Leaf);
      register_module("blocks." + std::to_string(i), blocks.back().get());
    }
    register_module("b", &b);
  }
};
}  // namespace

TEST_CASE("state_dict keys follow PyTorch order and dotted names") {
  Net n;
  std::vector<std::string> keys;
  for (auto& kv : n.state_dict()) keys.push_back(kv.first);
  CHECK(keys == std::vector<std::string>{"scale", "a.weight", "a.bias", "a.num_batches_tracked", "blocks.0.weight",
                                         "blocks.0.bias", "blocks.0.num_batches_tracked", "blocks.1.weight",
                                         "blocks.1.bias", "blocks.1.num_batches_tracked", "b.weight", "b.bias",
                                         "b.num_batches_tracked"});
  CHECK(n.num_parameters() == 1 + 4 * 9);
  CHECK(n.named_parameters().size() == 9);
}

TEST_CASE("load_state_dict: strict copies values; errors list missing, unexpected and mismatched keys") {
  Net src, dst;
  std::map<std::string, Tensor> sd;
  for (auto& kv : src.state_dict()) sd[kv.first] = kv.second;
  dst.load_state_dict(sd);
  expect_close(dst.blocks[1]->weight, src.blocks[1]->weight, 0, 0, "loaded");
  CHECK(dst.blocks[1]->weight.requires_grad());
  // module. prefix tolerated; BF16 file widens
  std::map<std::string, Tensor> pref;
  for (auto& kv : sd) pref["module." + kv.first] = dtype_is_floating(kv.second.dtype()) ? kv.second.to(DType::BF16) : kv.second;
  dst.load_state_dict(pref);
  expect_close(dst.a.bias, src.a.bias.to(DType::BF16).to(DType::F32), 0, 0, "bf16 widened");
  CHECK(dst.a.bias.dtype() == DType::F32);
  // problems
  auto bad = sd;
  bad.erase("b.bias");
  bad["extra.weight"] = Tensor::zeros({1});
  bad["a.weight"] = Tensor::zeros({2, 3});
  expect_error([&] { dst.load_state_dict(bad); }, {"missing", "b.bias", "unexpected", "extra.weight", "a.weight", "(2,3)", "(3,2)"});
  Module::LoadReport r = dst.load_state_dict(bad, false);
  CHECK(r.missing == std::vector<std::string>{"b.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
  CHECK(r.mismatched.size() == 1);
}

TEST_CASE("train/eval propagate; freeze; dtype moves keep integer buffers") {
  Net n;
  n.eval();
  CHECK_FALSE(n.blocks[0]->training());
  n.train();
  CHECK(n.b.training());
  n.set_requires_grad(false);
  CHECK_FALSE(n.a.weight.requires_grad());
  n.set_requires_grad(true);
  n.to(DType::F64);
  CHECK(n.a.weight.dtype() == DType::F64);
  CHECK(n.a.count.dtype() == DType::I64);
  CHECK(n.a.weight.requires_grad());
  CHECK(n.a.weight.is_leaf());
}
