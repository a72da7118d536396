#pragma once

// InfoNCE with negatives from the keys of every process (the global batch), for data-parallel
// training. The keys come in through `KeyAllGather` (<patchgcl/distributed.hpp> over c10d).

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/info_nce_normaliser.hpp>
#include <patchgcl/options/info_nce.hpp>
#include <patchgcl/options/key_all_gather.hpp>

#include <cmath>
#include <limits>

namespace patchgcl {
namespace functional {
namespace detail {

/// InfoNCE of this process's `n` anchors against the `M = world * n` keys of all processes,
/// mean-reduced, with a hand-written backward.
///
/// `S = q K^T / tau` `[n, M]`; the positive of output i is input `offset + i`. Rows (output to
/// input): `r_i` the row's normaliser (functional/info_nce_normaliser.hpp, with `fill`), loss
/// `mean_i (r_i - S_i,offset+i)`. Columns (input to output) run over the queries of *all*
/// processes: each process takes the normaliser of its own queries (no `fill`), the partial
/// `lse`s are all-gathered (forward only) and `c_j` is their normaliser over processes with
/// `fill`; the local column is rebased to `c_j` (`rebase`), so `e / sum` is the softmax of the
/// global column. The loss is the mean over this process's columns `mean_j (c_j - S_j-offset,j)`.
///
/// Gradient contract (that of data-parallel training): the global loss is the mean of the
/// processes' losses, and averaging the processes' gradients gives its gradient. Rows only
/// touch local queries, so their gradient is the plain one. Every column j of the global
/// batch depends on this process's queries through `c_j`; the backward adds that share,
/// `(g / n) exp(S_ij - c_j) k_j / tau` over all M columns, which is `world` times this
/// process's part of the global columns' gradient.
struct GlobalSimilarityNCE : public torch::autograd::Function<GlobalSimilarityNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& output,
                               const torch::Tensor& keys, int64_t offset, double tau, double fill, bool rows, bool cols,
                               KeyAllGather* gather) {
    const int64_t n = output.size(0);
    auto logits = torch::mm(output, keys.t()).div_(tau);  // [n, M]
    auto pos = logits.narrow(1, offset, n).diagonal();    // [n]
    Normaliser r, c;
    torch::Tensor loss;
    if (rows) {
      r = normaliser(logits, 1, fill);
      loss = (r.lse.squeeze(1) - pos).mean();
    }
    if (cols) {
      c = normaliser(logits, 0, -std::numeric_limits<double>::infinity());           // [1, M]: this process's queries
      auto partial = gather->world_size() == 1 ? c.lse : gather->all_gather(c.lse);  // [world, M]
      rebase(c, normaliser(partial, 0, fill).lse);
      auto col_loss = (c.lse.squeeze(0).narrow(0, offset, n) - pos).mean();
      loss = loss.defined() ? loss + col_loss : col_loss;
    }
    ctx->save_for_backward({keys, r.e, r.sum, c.e, c.sum});
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["offset"] = offset;
    return loss;
  }

  /// dS = (softmax_rows + softmax_cols - directions on the positives) g / (n tau), dq = dS K.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Normaliser r{saved[1], saved[2], {}}, c{saved[3], saved[4], {}};
    const auto& keys = saved[0];
    const auto& e = r.e.defined() ? r.e : c.e;
    const int64_t n = e.size(0);
    const int64_t offset = ctx->saved_data["offset"].toInt();
    auto g = grads[0] / (ctx->saved_data["tau"].toDouble() * static_cast<double>(n));  // 0-dim
    auto dl = normaliser_backward(r, torch::Tensor(), c, torch::Tensor());
    dl.narrow(1, offset, n).diagonal().sub_(static_cast<double>(r.e.defined() + c.e.defined()));
    return {torch::mm(dl, keys).mul_(g),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace detail

/// InfoNCE (Eq. 4 / PatchNCE) whose negatives are the keys of the whole global batch: every
/// node of every image on every process (`Negatives::kWholeBatch` across processes).
///
/// `output` (this process's output-image nodes `v`) and `input` (input-image nodes `z`) are
/// `[B, N, C]` or `[N, C]`, the same shape on every process. The keys are gathered with
/// `gather` (forward only, detached). Anchors are this process's nodes; the loss is their mean
/// (the sum of the directions' means for `Direction::kBoth`), so the mean over processes is
/// `info_nce` on the concatenated batch (rank order) with `Negatives::kWholeBatch`, and
/// averaging the processes' gradients gives that loss's gradient (see GlobalSimilarityNCE).
/// With one process it is `info_nce(output, input, options)`. Needs `negatives == kWholeBatch`,
/// `reduction == kMean` and `pruning == kNone` (PUT's pruning sorts over all anchors).
///
///   auto loss = global_info_nce(v, z, keys, InfoNCEOptions().negatives(Negatives::kWholeBatch));
inline torch::Tensor global_info_nce(const torch::Tensor& output, const torch::Tensor& input, KeyAllGather& gather,
                                     const InfoNCEOptions& options) {
  constexpr const char* fn = "global_info_nce";
  detail::check_info_nce_arguments(output, input, options, fn);
  TORCH_CHECK(options.negatives() == Negatives::kWholeBatch, fn,
              ": negatives from other processes are the keys of the whole global batch: `negatives` must be "
              "Negatives::kWholeBatch, got Negatives::kSameImage");
  TORCH_CHECK(options.reduction() == Reduction::kMean, fn,
              ": `reduction` must be Reduction::kMean (the input-to-output direction couples every process's "
              "anchors), got Reduction::kNone");
  TORCH_CHECK(options.pruning() == Pruning::kNone, fn,
              ": `pruning` must be Pruning::kNone with negatives from other processes (PUT's pruning ranks "
              "all anchors of the batch)");
  const int64_t world = gather.world_size(), rank = gather.rank();
  TORCH_CHECK(world >= 1 && rank >= 0 && rank < world, fn,
              ": the process group's rank must be in [0, world_size = ", world, "), got ", rank);

  const double tau = options.temperature();
  const int64_t C = output.size(-1);
  auto q = ::patchgcl::detail::compute_precision(output).reshape({-1, C});
  auto k = ::patchgcl::detail::compute_precision(input).detach().reshape({-1, C});
  const int64_t n = q.size(0);
  TORCH_CHECK(n * world >= 2, fn, ": needs at least 2 nodes in the global batch, got ", n * world);
  auto keys = world == 1 ? k : gather.all_gather(k);
  TORCH_CHECK(keys.dim() == 2 && keys.size(0) == n * world && keys.size(1) == C, fn,
              ": the gathered keys must be [world_size * n, C] = [", n * world, ", ", C, "], got ",
              ::patchgcl::detail::shape_str(keys));

  const double fill = detail::scaled_diagonal_value(q.scalar_type(), tau, options.diagonal_value(), fn);
  const auto d = options.direction();
  auto loss = detail::GlobalSimilarityNCE::apply(q, keys, rank * n, tau, fill, d != Direction::kInputToOutput,
                                                 d != Direction::kOutputToInput, &gather);
  ::patchgcl::detail::check_finite_result(loss, options.check_finite(), fn, "loss");
  return loss;
}

}  // namespace functional
}  // namespace patchgcl
