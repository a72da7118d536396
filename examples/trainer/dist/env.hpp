// torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and the choice of
// c10d backend, checked before any rendezvous: every error names the variable or option.
//
// With none of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set the trainer runs as one process.
#pragma once

#include <patchgcl/detail/integer.hpp>

#include <torch/torch.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

namespace trainer {
namespace dist {

/// torchrun's variables (docs/distributed.md).
struct Env {
  bool active = false;  ///< any of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr;
  uint16_t master_port = 0;
  /// The launcher serves the store on MASTER_PORT and rank 0 connects as a client:
  /// `launch` on one node (PATCHGCL_AGENT_STORE=1), or torchrun (TORCHELASTIC_USE_AGENT_STORE=True,
  /// as torch.distributed's own env:// rendezvous reads it).
  bool agent_store = false;
  /// torchrun's TORCHELASTIC_RESTART_COUNT: the keys of each attempt get their own prefix in
  /// the agent's store, which outlives the ranks of a failed attempt.
  int restart_count = 0;
};

/// A whole decimal integer in [lo, hi] (patchgcl::detail::read_integer), or an error naming the variable.
inline int64_t parse_int(const std::string& name, const std::string& value, int64_t lo, int64_t hi,
                         const std::string& expected) {
  int64_t v = 0;
  if (patchgcl::detail::read_integer(value, lo, hi, v) != patchgcl::detail::IntegerText::kOk)
    throw std::invalid_argument(fmt::format("{} must be {}, got '{}'", name, expected, value));
  return v;
}

using GetEnv = std::function<const char*(const char*)>;

inline Env read_env(const GetEnv& get = [](const char* n) { return std::getenv(n); }) {
  Env e;
  const char* names[] = {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"};
  for (const char* n : names) e.active = e.active || get(n) != nullptr;
  if (!e.active) return e;
  for (const char* n : names)
    if (!get(n))
      throw std::invalid_argument(fmt::format(
          "{} is not set: a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun and "
          "`patchgcl-trainer launch` set them); unset all four to train in one process",
          n));
  e.world = static_cast<int>(parse_int("WORLD_SIZE", get("WORLD_SIZE"), 1, 1 << 20, "a whole number >= 1"));
  e.rank = static_cast<int>(parse_int("RANK", get("RANK"), 0, 1 << 20, "a whole number >= 0"));
  if (e.rank >= e.world)
    throw std::invalid_argument(fmt::format("RANK must be in [0, WORLD_SIZE = {}), got {} (RANK={}, WORLD_SIZE={})",
                                            e.world, e.rank, get("RANK"), get("WORLD_SIZE")));
  e.master_port =
      static_cast<uint16_t>(parse_int("MASTER_PORT", get("MASTER_PORT"), 1, 65535, "a port number in [1, 65535]"));
  e.master_addr = get("MASTER_ADDR");
  if (e.master_addr.empty()) throw std::invalid_argument("MASTER_ADDR must be a host name or address, got ''");
  if (const char* l = get("LOCAL_RANK"))
    e.local_rank = static_cast<int>(parse_int("LOCAL_RANK", l, 0, 1 << 20, "a whole number >= 0"));
  if (const char* a = get("PATCHGCL_AGENT_STORE")) e.agent_store = std::string(a) == "1";
  if (const char* a = get("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = e.agent_store || std::string(a) == "True";
  if (const char* c = get("TORCHELASTIC_RESTART_COUNT"))
    e.restart_count = static_cast<int>(parse_int("TORCHELASTIC_RESTART_COUNT", c, 0, 1 << 20, "a whole number >= 0"));
  return e;
}

enum class Backend { kAuto, kGloo, kNccl };

inline Backend parse_backend(const std::string& s) {
  if (s == "auto") return Backend::kAuto;
  if (s == "gloo") return Backend::kGloo;
  if (s == "nccl") return Backend::kNccl;
  throw std::invalid_argument(fmt::format("--backend must be auto, gloo or nccl, got '{}'", s));
}

/// auto: NCCL for CUDA tensors, Gloo otherwise. Refuses what this build cannot do.
inline Backend resolve_backend(Backend b, const torch::Device& device) {
  if (b == Backend::kAuto) b = device.is_cuda() ? Backend::kNccl : Backend::kGloo;
  if (b == Backend::kNccl && !device.is_cuda())
    throw std::invalid_argument("--backend nccl needs --device cuda (NCCL reduces CUDA tensors only)");
#ifndef USE_C10D_NCCL
  if (b == Backend::kNccl)
    throw std::invalid_argument(
        "--backend nccl: this build has no NCCL (it needs a CUDA LibTorch and USE_C10D_NCCL); use --backend gloo");
#endif
#ifndef USE_C10D_GLOO
  if (b == Backend::kGloo)
    throw std::invalid_argument("--backend gloo: this build has no Gloo (install libgloo-dev and reconfigure)");
#endif
  return b;
}

}  // namespace dist
}  // namespace trainer
