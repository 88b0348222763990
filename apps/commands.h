// apps/commands.h — the stereort subcommands. Each takes the arguments after its name (argv[0] = "stereort <cmd>")
// and returns the process exit code. Library errors propagate as stereort::Error to main(), which prints one line.
#pragma once

namespace stereort {
namespace app {

int cmd_info(int argc, char** argv);
int cmd_infer(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_ssm_equiv(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);

}  // namespace app
}  // namespace stereort
