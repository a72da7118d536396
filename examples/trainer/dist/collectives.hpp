// What the training loop needs from a data-parallel run, without c10d: the trainer's headers see
// this interface only, process_group.hpp's Context implements it over a c10d process group. A null
// pointer everywhere means one process, exactly as the trainer ran before it was distributed.
#pragma once

#include <patchgcl/options/key_all_gather.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace trainer {

/// Gradient averaging overlapped with backward (dist/overlapped_reducer.hpp): made once for a set
/// of parameters; between begin() and finish() each bucket's all-reduce starts from the autograd
/// hooks as soon as its gradients are computed, while backward goes on.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  /// Before backward: the hooks take the gradients of the next backward.
  virtual void begin() = 0;
  /// After backward: starts the buckets still waiting (a parameter that got no gradient counts as
  /// zero), waits for every all-reduce and writes the averages into the parameters' .grad;
  /// returns the bytes all-reduced.
  virtual int64_t finish() = 0;
};

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  /// The backend and the master, for the start-up line ("gloo, master 127.0.0.1:29500").
  virtual std::string describe() const = 0;
  /// Rank 0's values of `tensors` on every rank (initial parameters).
  virtual void broadcast(const std::vector<torch::Tensor>& tensors) = 0;
  /// Averages the gradients of `params` over the ranks (bucketed, flattened all-reduce);
  /// returns the bytes all-reduced.
  virtual int64_t average_gradients(const std::vector<torch::Tensor>& params) = 0;
  /// The same average, overlapped with backward: hooks on `params` (removed when it is destroyed).
  virtual std::unique_ptr<GradientReducer> overlapped_reducer(const std::vector<torch::Tensor>& params) = 0;
  /// The mean over the ranks of a few numbers (the logged losses).
  virtual std::vector<double> average(const std::vector<double>& values) = 0;
  /// Every rank must hold the same `text` (a configuration, a resume step): a hash of it is
  /// all-gathered, and every rank throws naming the ranks that differ from rank 0, `what` was
  /// compared and what to do (`remedy`).
  virtual void check_same(const std::string& text, const std::string& what, const std::string& remedy) = 0;
  /// Each rank says whether its own start-up checks passed; returns the ranks whose did not, so
  /// that one rank's bad file stops every rank at once rather than after --dist-timeout.
  virtual std::vector<int> failed_ranks(bool ok) = 0;
  virtual void barrier() = 0;
  /// The keys of every process, for the losses' negatives across the global batch.
  virtual std::shared_ptr<patchgcl::KeyAllGather> key_all_gather() = 0;
};

}  // namespace trainer
