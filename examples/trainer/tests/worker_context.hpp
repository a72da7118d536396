// A rank of a multi-process test (tests/support/multi_process.hpp: `--worker NAME --rank R --world W
// --port P`) as the trainer's process group, for the workers of the trainer's tests and of the
// library's weak-scaling bench.
#pragma once

#include "trainer/dist/process_group.hpp"

#include <support/multi_process.hpp>

#include <chrono>
#include <memory>

namespace trainer_tests {

/// Rank `--rank` of `--world` (Gloo, CPU) with the store at 127.0.0.1:`--port`, which rank 0
/// serves; with port 0 rank 0 serves it first on a port the OS picks, announces that port and
/// joins it as a launcher's store (the port is only known once the store listens).
inline std::unique_ptr<trainer::dist::Context> worker_context(const patchgcl_test::WorkerArgs& a,
                                                              std::chrono::seconds timeout) {
  trainer::dist::Env env;
  env.active = true;
  env.rank = std::stoi(a.at("--rank"));
  env.world = std::stoi(a.at("--world"));
  env.master_addr = "127.0.0.1";
  env.master_port = static_cast<uint16_t>(std::stoi(a.at("--port")));
  static c10::intrusive_ptr<c10d::TCPStore> served;  // the store lives as long as the worker
  if (env.rank == 0 && env.master_port == 0) {
    served = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, env.world,
                                                  std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    env.master_port = served->getPort();
    env.agent_store = true;
    patchgcl_test::announce_port(env.master_port);
  }
  return std::make_unique<trainer::dist::Context>(env, trainer::dist::Backend::kGloo, torch::kCPU, timeout);
}

}  // namespace trainer_tests
