// fuzz/make_seeds.cpp — writes a small seed corpus for each fuzz target with our own writers:
//   make_seeds <dir>  ->  <dir>/{safetensors,pfm,png16,npz}/seed_*.
#include <cstdio>
#include <string>

#include "core/tensor.h"
#include "io/fileio.h"
#include "io/npy.h"
#include "io/pfm.h"
#include "io/png16.h"
#include "io/safetensors.h"

using namespace stereort;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <dir>\n");
    return 1;
  }
  std::string dir = argv[1];
  for (const char* sub : {"safetensors", "pfm", "png16", "npz"}) io::make_dirs(dir + "/" + sub);
  Tensor a = Tensor::arange(12, DType::F32).reshape({3, 4});
  save_safetensors(dir + "/safetensors/seed_0", {{"a", a}, {"b", Tensor::scalar(3, DType::I64)}}, {{"k", "v"}});
  save_safetensors(dir + "/safetensors/seed_1", {{"w", a.to(DType::BF16)}, {"m", Tensor::ones({2}, DType::U8)}});
  io::write_pfm(dir + "/pfm/seed_0", a);
  io::write_pfm(dir + "/pfm/seed_1", Tensor::arange(24, DType::F32).reshape({2, 4, 3}));
  io::write_file_atomic(dir + "/pfm/seed_2", std::string("Pf\n# comment\n2 1\n1.0\n\x3f\x80\0\0\x40\0\0\0", 29));
  io::write_png16(dir + "/png16/seed_0", Tensor::arange(12, DType::I32).reshape({3, 4}));
  io::write_png16(dir + "/png16/seed_1", Tensor::full({5, 7}, 40000, DType::I32));
  io::write_npz(dir + "/npz/seed_0", {{"x", a}, {"y", Tensor::ones({3}, DType::Bool)}}, false);
  io::write_npz(dir + "/npz/seed_1", {{"arr_0", a.to(DType::F64)}}, true);
  io::write_npy(dir + "/npz/seed_2", a.to(DType::I32));
  std::printf("seeds written under %s\n", dir.c_str());
  return 0;
}
