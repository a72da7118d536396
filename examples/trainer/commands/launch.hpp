// `patchgcl-trainer launch --nproc-per-node N [options] -- train ...`: starts this node's ranks
// with torchrun's variables (dist/launch.hpp).
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/dist/launch.hpp"

#include <memory>
#include <string>
#include <vector>

namespace trainer::commands {

inline Command add_launch(CLI::App& app, std::shared_ptr<launch::LaunchOptions> o) {
  auto* cmd = app.add_subcommand("launch",
                                 "start the ranks of this node with torchrun's variables: "
                                 "launch --nproc-per-node N [options] -- train ...");
  cmd->add_option("--nproc-per-node", o->nproc_per_node, "ranks on this node")->capture_default_str();
  cmd->add_option("--nnodes", o->nnodes, "nodes (machines), each running this launcher")->capture_default_str();
  cmd->add_option("--node-rank", o->node_rank, "this node's index in [0, --nnodes)")->capture_default_str();
  cmd->add_option("--master-addr", o->master_addr, "address of node 0 (its rank 0 serves the rendezvous)")
      ->capture_default_str();
  cmd->add_option("--master-port", o->master_port, "rendezvous port (0: a free one, one node only)")
      ->capture_default_str();
  cmd->add_option("--grace", o->grace_s, "seconds the other ranks get to stop after one failed")->capture_default_str();
  return {cmd, [o](const GlobalOptions&) { return launch::run(*o, launch::self_exe()); }};
}

/// `launch ... -- ARGS`: everything after the first `--` is the ranks' command line. Returns the
/// number of arguments before it (all of them when there is none).
inline int split_rank_command(int argc, char** argv, std::vector<std::string>& rank_args) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      rank_args.assign(argv + i + 1, argv + argc);
      return i;
    }
  return argc;
}

}  // namespace trainer::commands
