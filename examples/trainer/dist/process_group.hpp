// Data-parallel training on c10d for the example trainer (env.hpp reads the environment): rendezvous,
// rank 0's parameters broadcast, bucketed gradient all-reduce, a configuration check and
// messages that name a lost rank or the address a peer advertised.
//
// With none of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set the trainer runs as one process.
#pragma once

#include "trainer/dist/buckets.hpp"
#include "trainer/dist/collectives.hpp"
#include "trainer/dist/env.hpp"
#include "trainer/dist/gloo_transport.hpp"
#include "trainer/dist/overlapped_reducer.hpp"
#include "trainer/dist/peer_census.hpp"
#include "trainer/dist/watchdog.hpp"

#include <patchgcl/distributed.hpp>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {
namespace dist {

/// 64-bit FNV-1a: the same text gives the same hash on every machine and build.
inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

/// The process group of a run and the collectives the trainer needs.
class Context : public Collectives {
 public:
  using Group = patchgcl::distributed::GroupBase;

  /// Rendezvous (TCPStore at MASTER_ADDR:MASTER_PORT) and the process group; every failure
  /// names the master and the timeout, and a rank whose group has not formed within the timeout
  /// exits (status 1) rather than wait on: Gloo's connection wait is not bounded by it.
  Context(const Env& env, Backend backend, const torch::Device& device, std::chrono::seconds timeout)
      : rank_(env.rank), world_(env.world), timeout_(timeout) {
    // A write to a peer that has gone (a socket of the store or of Gloo) fails with EPIPE, which
    // becomes an error naming the lost rank, rather than raise SIGPIPE, which ends the rank without a word.
    std::signal(SIGPIPE, SIG_IGN);
    connect_store(env, timeout);
    // Gloo's own timeout (the same) reports a refused connection first, with the peers' addresses.
    Watchdog watchdog(timeout + kGrace,
                      fmt::format("rank {}: the process group of {} ranks did not form within --dist-timeout {} s; "
                                  "stopping",
                                  rank_, world_, timeout.count()));
    try {
      const auto b = resolve_backend(backend, device);
      description_ =
          fmt::format("{}, master {}:{}", b == Backend::kGloo ? "gloo" : "nccl", env.master_addr, env.master_port);
      if (b == Backend::kGloo) {
#ifdef USE_C10D_GLOO
        const auto transport = choose_gloo_transport(env.master_addr);
        watchdog.add_detail(fmt::format("this rank advertised {} ({})", transport.address, transport.why));
        group_ = make_gloo_group(transport);
#endif
      } else {
#ifdef USE_C10D_NCCL
        group_ = patchgcl::distributed::make_nccl_group(store_, rank_, world_, ms());
#endif
      }
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("rank {}: the process group of {} ranks did not form within {} s: {}{}",
                                           rank_, world_, timeout.count(), first_line(e.what()),
                                           peer_addresses(*store_, rank_, world_, advertised_)));
    }
  }

  std::string describe() const override { return description_; }
  std::shared_ptr<patchgcl::KeyAllGather> key_all_gather() override {
    return patchgcl::distributed::key_all_gather(group_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  Group& group() { return *group_; }

  /// Every rank must run the same configuration: the hashes of `text` are all-gathered and
  /// each differing rank is named.
  void check_same_config(const std::string& text) {
    check_same(text, "options", "start every rank with the same command");
  }

  void check_same(const std::string& text, const std::string& what, const std::string& remedy) override {
    const auto h = static_cast<int64_t>(fnv1a(text));
    auto all = collective("configuration check", [&] {
      return patchgcl::distributed::all_gather(*group_, torch::tensor({h}, torch::kInt64), false);
    });
    std::vector<int> differ;
    for (int r = 0; r < world_; ++r)
      if (all[r].item<int64_t>() != all[0].item<int64_t>()) differ.push_back(r);
    if (!differ.empty())
      throw std::runtime_error(fmt::format(
          "rank {}: the ranks were started with different {}: rank(s) {} differ from rank 0 (hash {:016x} on rank "
          "0, {:016x} here); {}",
          rank_, what, fmt::join(differ, ", "), static_cast<uint64_t>(all[0].item<int64_t>()), static_cast<uint64_t>(h),
          remedy));
  }

  std::vector<int> failed_ranks(bool ok) override {
    auto all = collective("start-up check", [&] {
      return patchgcl::distributed::all_gather(*group_, torch::tensor({ok ? 1 : 0}, torch::kInt64), false);
    });
    std::vector<int> failed;
    for (int r = 0; r < world_; ++r)
      if (all[r].item<int64_t>() == 0) failed.push_back(r);
    return failed;
  }

  /// Rank 0's values of `tensors` on every rank (initial parameters), a few flat buckets.
  void broadcast(const std::vector<torch::Tensor>& tensors) override {
    torch::NoGradGuard no_grad;
    for_buckets(tensors, [&](std::vector<torch::Tensor>& bucket) {
      auto flat = flatten(bucket);
      std::vector<at::Tensor> v{flat};
      collective("broadcast of rank 0's parameters", [&] {
        c10d::BroadcastOptions o;
        o.rootRank = 0;
        patchgcl::distributed::wait(group_->broadcast(v, o), "broadcast");
        return torch::Tensor();
      });
      unflatten(flat, bucket);
    });
  }

  /// Averages the gradients of `params` over the ranks with one all-reduce per bucket of at
  /// most `bucket_bytes` (DDP's 25 MiB). Parameters without a gradient count as zero. Returns
  /// the bytes all-reduced.
  int64_t average_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (auto p : params) {
      if (!p.requires_grad()) continue;
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    int64_t bytes = 0;
    for_buckets(
        grads,
        [&](std::vector<torch::Tensor>& bucket) {
          auto flat = flatten(bucket);
          bytes += flat.numel() * static_cast<int64_t>(flat.element_size());
          std::vector<at::Tensor> v{flat};
          collective("gradient all-reduce", [&] {
            patchgcl::distributed::wait(group_->allreduce(v), "allreduce");
            return torch::Tensor();
          });
          flat.div_(world_);
          unflatten(flat, bucket);
        },
        bucket_bytes);
    return bytes;
  }

  int64_t average_gradients(const std::vector<torch::Tensor>& params) override {
    return average_gradients(params, 25 << 20);
  }

  /// The bucketed average started from the autograd hooks (DDP's overlap): each bucket's
  /// all-reduce runs on Gloo's (or NCCL's) own threads while backward goes on.
  std::unique_ptr<GradientReducer> overlapped_reducer(const std::vector<torch::Tensor>& params) override {
    return std::make_unique<OverlappedReducer>(params, world_, [this](torch::Tensor& flat) -> OverlappedReducer::Wait {
      std::vector<at::Tensor> v{flat};
      c10::intrusive_ptr<c10d::Work> work;
      collective("gradient all-reduce", [&] {
        work = group_->allreduce(v);
        return torch::Tensor();
      });
      return [this, work] {
        collective("gradient all-reduce", [&] {
          patchgcl::distributed::wait(work, "allreduce");
          return torch::Tensor();
        });
      };
    });
  }

  /// The mean over the ranks of a few numbers (the logged losses): one small all-reduce.
  std::vector<double> average(const std::vector<double>& values) override {
    auto t = torch::tensor(values, torch::kFloat64);
    std::vector<at::Tensor> v{t};
    collective("loss all-reduce", [&] {
      patchgcl::distributed::wait(group_->allreduce(v), "allreduce");
      return torch::Tensor();
    });
    t.div_(world_);
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }

  void barrier() override {
    collective("barrier", [&] {
      auto t = torch::zeros({1});
      std::vector<at::Tensor> v{t};
      patchgcl::distributed::wait(group_->allreduce(v), "barrier");
      return torch::Tensor();
    });
  }

  /// Runs a collective; a failure (a lost peer, a timeout) becomes an error naming the lost
  /// rank(s), found by a census in the store (peer_census.hpp), and the rank exits within kGrace
  /// of it whatever its way out waits for (exit_after at kExitDeadline).
  template <typename F>
  torch::Tensor collective(const char* what, F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      const auto failure = fmt::format("rank {}: {} failed", rank_, what);
      exit_after(kExitDeadline, fmt::format("{} and the rank did not stop within {} s: {}", failure,
                                            kExitDeadline.count(), first_line(e.what())));
      const auto message =
          fmt::format("{}: {}; {}", failure, lost_ranks(*store_, rank_, world_, timeout_), first_line(e.what()));
      set_exit_line(fmt::format("{} (the rank did not stop within {} s)", message, kExitDeadline.count()));
      throw std::runtime_error(message);
    }
  }

 private:
  std::chrono::milliseconds ms() const { return std::chrono::duration_cast<std::chrono::milliseconds>(timeout_); }

  void connect_store(const Env& env, std::chrono::seconds timeout) {
    try {
      store_ = patchgcl::distributed::connect_store(env.master_addr, env.master_port, env.rank, env.world, ms(),
                                                    /*rank0_serves=*/!env.agent_store);
      // Keys per attempt: torchrun's store outlives the ranks of a failed attempt. Every rank
      // uses the prefix, whoever serves the store.
      store_ = c10::make_intrusive<c10d::PrefixStore>(fmt::format("patchgcl/attempt_{}", env.restart_count), store_);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format(
          "rank {}: cannot reach the master at {}:{} within --dist-timeout {} s ({}): is rank 0 running, and are "
          "MASTER_ADDR/MASTER_PORT right?",
          rank_, env.master_addr, env.master_port, timeout.count(), first_line(e.what())));
    }
  }

#ifdef USE_C10D_GLOO
  /// The Gloo group on `transport`'s interfaces; the address goes into the store first, for the
  /// peers' error messages.
  c10::intrusive_ptr<Group> make_gloo_group(const GlooTransport& transport) {
    std::cerr << fmt::format("rank {}: gloo transport on {} ({})\n", rank_, transport.address, transport.why);
    advertised_ = transport.address;
    store_->set(gloo_address_key(rank_), std::vector<uint8_t>(transport.address.begin(), transport.address.end()));
    auto options = c10d::ProcessGroupGloo::Options::create(ms());
    for (const auto& name : transport.interfaces)
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    if (transport.interfaces.empty())
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(transport.hostname));
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, world_, options);
  }
#endif

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  int rank_, world_;
  std::chrono::seconds timeout_;
  std::string description_;
  std::optional<std::string> advertised_;  ///< this rank's Gloo address, once chosen
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
};

}  // namespace dist
}  // namespace trainer
