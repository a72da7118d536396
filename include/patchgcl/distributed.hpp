#pragma once

// Optional: c10d (LibTorch's distributed engine) for patchgcl. Only this header includes
// c10d; link `PatchGCL::distributed` (it defines USE_C10D_GLOO when Gloo's headers exist).
//
//   auto store = patchgcl::distributed::connect_store("127.0.0.1", port, rank, world, timeout);
//   auto group = patchgcl::distributed::make_gloo_group(store, rank, world, timeout);
//   auto keys = patchgcl::distributed::key_all_gather(group);           // shared_ptr<KeyAllGather>
//   auto loss = patchgcl::functional::global_info_nce(v, z, *keys, options);
//
// The helpers are templates over the group type: c10d::ProcessGroup on LibTorch 1.13, and
// c10d::ProcessGroup or c10d::Backend (ProcessGroupGloo is a Backend there) on 2.x; both have
// the same getRank/getSize/allgather/allreduce/broadcast.

#include <patchgcl/compat.hpp>
#include <patchgcl/options/key_all_gather.hpp>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace distributed {

/// The base class of ProcessGroupGloo/ProcessGroupNCCL: c10d::ProcessGroup on LibTorch 1.x,
/// c10d::Backend on 2.x (where ProcessGroup became a dispatcher over backends).
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

namespace detail {

/// Dimensions and sizes of `x` as 9 int64 values (-1 padded), comparable across processes.
inline torch::Tensor shape_signature(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() <= 8, "patchgcl::distributed::all_gather: tensors of rank <= 8 only, got ", x.dim());
  std::vector<int64_t> s(9, -1);
  s[0] = x.dim();
  for (int64_t d = 0; d < x.dim(); ++d) s[d + 1] = x.size(d);
  return torch::tensor(s, torch::kInt64);
}

}  // namespace detail

/// Waits for a collective and rethrows its failure with `what` in front (a lost peer shows up
/// here after the group's timeout).
inline void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    TORCH_CHECK(false, what, " failed: ", e.what());
  }
}

/// Forward-only all_gather along dimension 0: `x` `[n, ...]` of every process -> `[world * n, ...]`
/// in rank order. `x` is detached (no autograd through the collective). On CPU the shapes are
/// compared first, so a process with another shape gets an error naming both shapes instead of
/// a Gloo size mismatch; `check_shapes = false` skips that extra collective.
template <class Group>
torch::Tensor all_gather(Group& group, const torch::Tensor& x, bool check_shapes = true) {
  constexpr const char* fn = "patchgcl::distributed::all_gather";
  TORCH_CHECK(x.defined() && x.dim() >= 1, fn, ": `x` must be a defined tensor of rank >= 1");
  torch::NoGradGuard no_grad;
  const int world = group.getSize();
  std::vector<at::Tensor> input{x.detach().contiguous()};
  if (world == 1) return input[0].clone();
  if (check_shapes && x.device().is_cpu()) {
    std::vector<at::Tensor> sig{detail::shape_signature(x)};
    std::vector<std::vector<at::Tensor>> sigs(1);
    for (int r = 0; r < world; ++r) sigs[0].push_back(torch::empty_like(sig[0]));
    wait(group.allgather(sigs, sig), "all_gather (shapes)");
    for (int r = 0; r < world; ++r)
      TORCH_CHECK(sigs[0][r].equal(sig[0]), fn, ": every process must gather the same shape; rank ", group.getRank(),
                  " has ", sig[0], " and rank ", r, " has ", sigs[0][r]);
  }
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < world; ++r) outputs[0].push_back(torch::empty_like(input[0]));
  wait(group.allgather(outputs, input), "all_gather");
  return torch::cat(outputs[0], 0);
}

/// `KeyAllGather` over a c10d group: pass it to the losses for negatives from every process.
template <class Group>
class ProcessGroupKeyAllGather final : public KeyAllGather {
 public:
  explicit ProcessGroupKeyAllGather(c10::intrusive_ptr<Group> group, bool check_shapes = true)
      : group_(std::move(group)), check_shapes_(check_shapes) {
    TORCH_CHECK(group_, "ProcessGroupKeyAllGather: the process group is null");
  }
  int64_t rank() const override { return group_->getRank(); }
  int64_t world_size() const override { return group_->getSize(); }
  torch::Tensor all_gather(const torch::Tensor& x) override {
    return distributed::all_gather(*group_, x, check_shapes_);
  }

 private:
  c10::intrusive_ptr<Group> group_;
  bool check_shapes_;
};

template <class Group>
std::shared_ptr<KeyAllGather> key_all_gather(c10::intrusive_ptr<Group> group, bool check_shapes = true) {
  return std::make_shared<ProcessGroupKeyAllGather<Group>>(std::move(group), check_shapes);
}

/// Rendezvous through a c10d::TCPStore: rank 0 serves it on `port` (0: the OS picks a free
/// port; read it back with `getPort()`), the others connect to `host:port`. With
/// `rank0_serves = false` another process serves it (torchrun's agent, when it sets
/// TORCHELASTIC_USE_AGENT_STORE=True) and every rank connects. Does not wait for the other ranks;
/// the process group's construction does.
inline c10::intrusive_ptr<c10d::TCPStore> connect_store(const std::string& host, uint16_t port, int rank, int world,
                                                        std::chrono::milliseconds timeout, bool rank0_serves = true) {
  TORCH_CHECK(world >= 1, "connect_store: `world` must be >= 1, got ", world);
  TORCH_CHECK(rank >= 0 && rank < world, "connect_store: `rank` must be in [0, world = ", world, "), got ", rank);
  const bool serve = rank0_serves && rank == 0;
  TORCH_CHECK(serve || port != 0, "connect_store: rank ", rank, " needs the master's port, got 0");
  c10d::TCPStoreOptions opts;
  opts.port = port;
  opts.isServer = serve;
  opts.numWorkers = static_cast<std::size_t>(world);
  opts.waitWorkers = false;
  opts.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(host, opts);
}

#ifdef USE_C10D_GLOO
/// A Gloo group (CPU tensors) of `world` processes meeting in `store`. `hostname` picks the
/// transport's interface: "127.0.0.1" for loopback, empty for the machine's default.
inline c10::intrusive_ptr<c10d::ProcessGroupGloo> make_gloo_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                                  int rank, int world,
                                                                  std::chrono::milliseconds timeout,
                                                                  const std::string& hostname = "") {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(hostname.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                              : c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
}
#endif

#ifdef USE_C10D_NCCL
/// An NCCL group (CUDA tensors, one device per process) of `world` processes meeting in `store`.
inline c10::intrusive_ptr<c10d::ProcessGroupNCCL> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                                  int rank, int world,
                                                                  std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
}
#endif

}  // namespace distributed
}  // namespace patchgcl
