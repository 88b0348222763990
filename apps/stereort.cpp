// apps/stereort.cpp — the CLI entry point: `stereort <subcommand> [options]`, `stereort --version`.
//   The only place that catches stereort::Error: it prints "stereort: <message>" and exits non-zero.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/error.h"

namespace {

struct Command {
  const char* name;
  const char* help;
  int (*run)(int, char**);
};

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "build flags, CUDA/cuDNN versions and the GPU found", stereort::app::cmd_info},
      {"infer", "disparity for image pairs (files, folders or a list)", stereort::app::cmd_infer},
      {"bench", "inference latency per size and precision (CUDA events)", stereort::app::cmd_bench},
      {"convert", "inspect a safetensors file; rename keys, cast dtypes", stereort::app::cmd_convert},
      {"ssm-equiv", "SSM == masked linear attention: the four SSD forms compared, as a table", stereort::app::cmd_ssm_equiv},
      {"train", "train StereoMamba (AdamW + OneCycle; checkpoints, validation, resume)", stereort::app::cmd_train},
      {"eval", "metrics over a dataset with ground truth (per-image CSV + summary)", stereort::app::cmd_eval},
  };
  return table;
}

void usage() {
  std::printf("stereort %s — stereo disparity runtime (StereoMamba, SMoEStereo)\n\n", STEREORT_VERSION);
  std::printf("usage: stereort <command> [options]   (stereort <command> --help for its options)\n\n");
  for (const auto& c : commands()) std::printf("  %-10s %s\n", c.name, c.help);
  std::printf("\n  --version  print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 1 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("stereort %s\n", STEREORT_VERSION);
    return 0;
  }
  for (const auto& c : commands()) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    std::string prog = std::string("stereort ") + c.name;
    std::vector<char*> args(argv + 1, argv + argc);
    args[0] = const_cast<char*>(prog.c_str());
    try {
      return c.run(int(args.size()), args.data());
    } catch (const stereort::Error& e) {
      std::fprintf(stderr, "stereort: %s\n", e.message().c_str());
      if (std::getenv("STEREORT_DEBUG")) std::fprintf(stderr, "  at %s\n", e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stereort: %s\n", e.what());
      return 2;
    }
  }
  std::fprintf(stderr, "stereort: unknown command '%s' (stereort --help lists the commands)\n", argv[1]);
  return 1;
}
