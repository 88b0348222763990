// apps/cmd_ssm_equiv.cpp — `stereort ssm-equiv`: the SSM == masked linear attention suite (kernels.md §4) as a table.
//   --device cpu: the fp64 forms (recurrence, materialised attention, chunked SSD at Q in {1,16,64,256,>=T},
//   Mamba-1 mapping) against each other, outputs, final states and gradients, plus central differences.
//   --device cuda: the fp32 (and bf16) CUDA kernels against fp64 references on the rounded inputs.
//   Exits 1 when any row fails.
#include <cxxopts.hpp>
#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/ssm_equiv.h"

namespace stereort {
namespace app {

int cmd_ssm_equiv(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "SSM == masked linear attention: compare the four SSD forms and print the errors");
  opts.add_options()
      ("device", "cpu (the fp64 forms) or cuda (the fp32/bf16 kernels vs fp64 references)",
       cxxopts::value<std::string>()->default_value("cpu"))
      ("quick", "the CI subset (short sequences; T 4097 forward only on the CPU)")
      ("failures", "print only the failing rows")
      ("h,help", "show this help");
  auto r = opts.parse(argc, argv);
  if (r.count("help")) {
    std::cout << opts.help() << "\n";
    return 0;
  }
  equiv::SuiteOptions o;
  o.device = Device::parse(r["device"].as<std::string>());
  STEREORT_CHECK(o.device.is_cpu() || cuda_available(),
                 "ssm-equiv: --device {} needs a CUDA device and a CUDA build; this one has none (try --device cpu)",
                 o.device.str());
  o.quick = r.count("quick") > 0;
  const bool only_failures = r.count("failures") > 0;
  std::printf("ssm-equiv: device %s, %s suite\n%s\n", o.device.str().c_str(), o.quick ? "quick" : "full",
              equiv::table_header().c_str());
  int64_t n = 0, fails = 0;
  o.on_row = [&](const equiv::Row& row) {
    ++n;
    fails += !row.pass;
    if (!only_failures || !row.pass) std::printf("%s\n", equiv::format_row(row).c_str());
    std::fflush(stdout);
  };
  equiv::run_suite(o);
  std::printf("%lld rows, %lld failed: %s\n", static_cast<long long>(n), static_cast<long long>(fails),
              fails ? "FAIL" : "PASS");
  return fails ? 1 : 0;
}

}  // namespace app
}  // namespace stereort
