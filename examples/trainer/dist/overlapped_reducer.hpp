// Gradient averaging overlapped with backward, as PyTorch's DDP reducer does it: the parameters
// are split into buckets in reverse order (backward computes the last layers' gradients first),
// a hook on each parameter copies its gradient into its bucket's flat buffer, and the bucket's
// all-reduce starts as soon as its last gradient is in, while backward goes on with the earlier
// layers. Buckets start strictly in their order, so every rank issues the same collectives in the
// same order whatever order its hooks fire in.
#pragma once

#include "trainer/dist/collectives.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace trainer {
namespace dist {

class OverlappedReducer : public GradientReducer {
 public:
  /// Waits for a started all-reduce (throws if it failed).
  using Wait = std::function<void()>;
  /// Starts the in-place sum over the ranks of `flat` and returns its wait.
  using Launch = std::function<Wait(torch::Tensor& flat)>;

  /// Buckets of `params` (those that require a gradient) in reverse order: the first at most
  /// `first_bucket_bytes` (so that communication starts early), the others at most
  /// `bucket_bytes` (DDP's 1 MiB and 25 MiB); a larger tensor is a bucket of its own.
  OverlappedReducer(std::vector<torch::Tensor> params, int world, Launch launch,
                    int64_t first_bucket_bytes = int64_t{1} << 20, int64_t bucket_bytes = int64_t{25} << 20)
      : params_(std::move(params)), world_(world), launch_(std::move(launch)) {
    slots_.resize(params_.size());
    for (size_t k = params_.size(); k-- > 0;) {
      const auto& p = params_[k];
      if (!p.requires_grad()) continue;
      const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
      const bool fits = !buckets_.empty() && buckets_.back().dtype == p.scalar_type() &&
                        buckets_.back().device == p.device() &&
                        buckets_.back().bytes + bytes <= (buckets_.size() == 1 ? first_bucket_bytes : bucket_bytes);
      if (!fits) buckets_.push_back(Bucket{p.scalar_type(), p.device()});
      auto& b = buckets_.back();
      slots_[k] = Slot{static_cast<int64_t>(buckets_.size()) - 1, b.numel, p.numel(), false};
      b.members.push_back(k);
      b.numel += p.numel();
      b.bytes += bytes;
    }
    for (auto& b : buckets_) b.flat = torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype).device(b.device));
    for (size_t k = 0; k < params_.size(); ++k) {
      if (slots_[k].bucket < 0) continue;
      hooks_.emplace_back(k, params_[k].register_hook([this, k](const torch::Tensor& grad) { ready(k, grad); }));
    }
  }
  OverlappedReducer(const OverlappedReducer&) = delete;
  OverlappedReducer& operator=(const OverlappedReducer&) = delete;
  ~OverlappedReducer() override {
    for (const auto& [k, handle] : hooks_) params_[k].remove_hook(handle);
  }

  void begin() override {
    for (auto& s : slots_) s.seen = false;
    for (auto& b : buckets_) b.pending = static_cast<int64_t>(b.members.size()), b.wait = nullptr;
    next_ = 0;
    armed_ = true;
  }

  int64_t finish() override {
    if (!armed_) throw std::logic_error("OverlappedReducer::finish without begin");
    armed_ = false;
    torch::NoGradGuard no_grad;
    for (auto& b : buckets_)  // parameters that got no gradient in this backward count as zero
      for (auto k : b.members)
        if (!slots_[k].seen) view(k).zero_();
    while (next_ < buckets_.size()) start(next_++);
    int64_t bytes = 0;
    for (auto& b : buckets_) {
      b.wait();
      b.flat.div_(world_);
      bytes += b.bytes;
      for (auto k : b.members) {
        auto& p = params_[k];
        if (p.grad().defined()) p.mutable_grad().copy_(view(k).view_as(p));
        else p.mutable_grad() = view(k).view_as(p).clone();
      }
    }
    return bytes;
  }

  /// Buckets started so far in this backward (for tests: > 0 before backward ends is the overlap).
  size_t started() const { return next_; }
  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Slot {
    int64_t bucket = -1, offset = 0, numel = 0;
    bool seen = false;
  };
  struct Bucket {
    torch::ScalarType dtype;
    torch::Device device;
    std::vector<size_t> members;
    int64_t numel = 0, bytes = 0, pending = 0;
    torch::Tensor flat;
    Wait wait;
  };

  torch::Tensor view(size_t k) {
    const auto& s = slots_[k];
    return buckets_[static_cast<size_t>(s.bucket)].flat.narrow(0, s.offset, s.numel);
  }

  /// The hook: the gradient of parameter `k` (before it is accumulated into .grad).
  void ready(size_t k, const torch::Tensor& grad) {
    if (!armed_) return;  // a backward outside the training step's begin/finish
    torch::NoGradGuard no_grad;
    auto& s = slots_[k];
    auto& b = buckets_[static_cast<size_t>(s.bucket)];
    if (s.seen) {
      if (b.wait)
        throw std::runtime_error("OverlappedReducer: a second gradient of parameter " + std::to_string(k) +
                                 " after its bucket's all-reduce started (two backward passes in one step?)");
      view(k).add_(grad.reshape({-1}));
      return;
    }
    view(k).copy_(grad.reshape({-1}));
    s.seen = true;
    --b.pending;
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) start(next_++);
  }

  void start(size_t i) { buckets_[i].wait = launch_(buckets_[i].flat); }

  std::vector<torch::Tensor> params_;
  int world_;
  Launch launch_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, unsigned>> hooks_;
  size_t next_ = 0;
  bool armed_ = false;
};

}  // namespace dist
}  // namespace trainer
