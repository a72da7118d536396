// Flat buckets of tensors for the collectives: one all-reduce or broadcast per bucket instead of
// one per tensor (as DDP's reducer buckets its gradients).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace trainer {
namespace dist {

/// Consecutive tensors of one dtype and device, at most `bucket_bytes` per bucket (a larger
/// tensor is a bucket of its own).
template <typename F>
inline void for_buckets(const std::vector<torch::Tensor>& tensors, F&& f, int64_t bucket_bytes = 25 << 20) {
  std::vector<torch::Tensor> bucket;
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    if (!bucket.empty() &&
        (bytes + b > bucket_bytes || t.scalar_type() != bucket[0].scalar_type() || t.device() != bucket[0].device())) {
      f(bucket);
      bucket.clear();
      bytes = 0;
    }
    bucket.push_back(t);
    bytes += b;
  }
  if (!bucket.empty()) f(bucket);
}
inline torch::Tensor flatten(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : ts) flat.push_back(t.reshape({-1}));
  return torch::cat(flat);
}
inline void unflatten(const torch::Tensor& flat, std::vector<torch::Tensor>& ts) {
  int64_t offset = 0;
  for (auto& t : ts) {
    t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
}

}  // namespace dist
}  // namespace trainer
