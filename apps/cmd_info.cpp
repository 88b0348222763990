// apps/cmd_info.cpp — `stereort info`: build flags, library versions, the GPU (or "no CUDA device").
#include <cxxopts.hpp>
#include <iostream>

#include "apps/commands.h"
#include "core/context.h"

namespace stereort {
namespace app {

int cmd_info(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Show build configuration and devices");
  opts.add_options()("h,help", "show this help");
  auto r = opts.parse(argc, argv);
  if (r.count("help")) {
    std::cout << opts.help() << "\n";
    return 0;
  }
  std::cout << build_info();
  return 0;
}

}  // namespace app
}  // namespace stereort
