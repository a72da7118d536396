#pragma once

// The seam between the losses and a process group: the core headers never include c10d.
// <patchgcl/distributed.hpp> implements this interface over a c10d process group.

#include <patchgcl/compat.hpp>

#include <cstdint>

namespace patchgcl {

/// Gives every process the keys of all processes, for negatives across the global batch.
///
/// Keys are detached in PatchNCE and in the graph loss (the input image's side), so a
/// forward-only all_gather is enough: there is no autograd through the collective.
/// Every process calls `all_gather` the same number of times, in the same order, with
/// tensors of the same shape and dtype (the losses do, given the same options and
/// per-process batch size).
class KeyAllGather {
 public:
  virtual ~KeyAllGather() = default;
  /// This process's index in `[0, world_size())`.
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  /// `x` `[n, ...]` of this process -> `[world_size * n, ...]`: the processes' tensors in
  /// rank order along dimension 0. Never differentiated.
  virtual torch::Tensor all_gather(const torch::Tensor& x) = 0;
};

}  // namespace patchgcl
