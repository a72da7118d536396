#pragma once

// Eq. 4 (and Eq. 9 on pooled graphs), CUT's PatchNCE and PUT's negative pruning, on one
// similarity matrix per image.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/options/info_nce.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace patchgcl {
namespace functional {
namespace detail {

/// The scalar options of InfoNCE, checked by info_nce and at construction of the losses.
inline void check_info_nce_options(const InfoNCEOptions& o, const char* fn) {
  patchgcl::detail::check_positive(o.temperature(), fn, "temperature");
  TORCH_CHECK(!std::isnan(o.diagonal_value()) && o.diagonal_value() != std::numeric_limits<double>::infinity(), fn,
              ": `diagonal_value` must be finite or -infinity, got ", o.diagonal_value());
  if (o.pruning() != Pruning::kNone) patchgcl::detail::check_at_least(o.hard_negatives(), 1, fn, "hard_negatives");
}

/// The checks of a public InfoNCE entry point (`info_nce`, `global_info_nce`): node tensors of
/// one shape, device and dtype, valid options, and finite values where the options ask.
inline void check_info_nce_arguments(const torch::Tensor& output, const torch::Tensor& input,
                                     const InfoNCEOptions& options, const char* fn) {
  patchgcl::detail::check_nodes(output, fn, "output");
  patchgcl::detail::check_nodes(input, fn, "input");
  patchgcl::detail::check_same_shape(output, input, fn, "output", "input");
  patchgcl::detail::check_same_device(output, input, fn, "output", "input");
  patchgcl::detail::check_same_dtype(output, input, fn, "output", "input");
  check_info_nce_options(options, fn);
  patchgcl::detail::check_finite(output, options.check_finite(), fn, "output");
  patchgcl::detail::check_finite(input, options.check_finite(), fn, "input");
}

/// `diagonal_value / tau`, the logit of the extra negative, as a scalar of the computation's
/// dtype: checks that `1 / tau` is representable in it and clamps a finite value to its range
/// (-infinity stays -infinity: no extra negative).
inline double scaled_diagonal_value(torch::ScalarType computation, double tau, double diagonal_value,
                                    const char* fn) {
  const double largest = computation == torch::kFloat64 ? std::numeric_limits<double>::max()
                                                        : static_cast<double>(std::numeric_limits<float>::max());
  TORCH_CHECK(1.0 / tau <= largest, fn, ": `temperature` must be >= ", 1.0 / largest, " for ", computation,
              " computation (1 / temperature must be representable), got ", tau);
  return std::isinf(diagonal_value) ? diagonal_value : std::max(-largest, std::min(largest, diagonal_value / tau));
}


/// Per-anchor cross-entropy of `logits` `[B, n, n]` whose rows are anchors and whose diagonal
/// holds the positives: `-log softmax([pos_i, negatives_i])[0]`, with negatives as the options say.
inline torch::Tensor anchor_losses(const torch::Tensor& logits, double fill, const InfoNCEOptions& o) {
  auto pos = logits.diagonal(0, -2, -1);  // [B, n]
  switch (o.pruning()) {
    case Pruning::kNone: {
      // logsumexp over [pos_i, S_ij (j != i), fill] == logaddexp(logsumexp_j S_ij, fill):
      // no [n, n] mask and no concatenated copy of the logits.
      auto lse = logits.logsumexp(-1);
      if (std::isfinite(fill)) lse = torch::logaddexp(lse, torch::full_like(lse, fill));
      return lse - pos;
    }
    case Pruning::kHardestPerAnchor: {
      auto negatives = logits.clone();
      negatives.diagonal(0, -2, -1).fill_(-std::numeric_limits<double>::infinity());
      auto hardest = std::get<0>(negatives.topk(o.hard_negatives(), -1));
      return torch::cat({pos.unsqueeze(-1), hardest}, -1).logsumexp(-1) - pos;
    }
    case Pruning::kReferenceColumnSort: {
      // Columns are sorted independently and only the first k are kept: sort those k alone
      // (same values; N / k times less sorting than the released code's full sort).
      auto negatives = logits.narrow(-1, 0, o.hard_negatives()).clone();  // [B', n, k]
      negatives.diagonal(0, -2, -1).fill_(fill);                          // (i, i) for i < k
      auto kept = std::get<0>(negatives.reshape({-1, o.hard_negatives()}).sort(/*dim=*/0, /*descending=*/true));
      auto flat_pos = pos.reshape({-1, 1});
      return (torch::cat({flat_pos, kept}, 1).logsumexp(1) - flat_pos.squeeze(1)).view_as(pos);
    }
  }
  TORCH_CHECK(false, "info_nce: unknown pruning mode");
}

/// InfoNCE without pruning on one similarity matrix, with a hand-written backward.
///
/// Forward: `L = V Z^T / tau` (rows: output nodes `v_i`, columns: input nodes `z_j`) and the per-anchor losses of the requested directions, exactly as
/// `anchor_losses` computes them (same ops, same numbers): row i `r_i - L_ii` with
/// `r_i = logaddexp(logsumexp_j L_ij, fill)`, column j `c_j - L_jj` likewise over i.
/// Backward, for upstream `g` per anchor (the directions' losses are summed per node):
///   dL_ij = g_i exp(L_ij - r_i) + g_j exp(L_ij - c_j) - [i = j] (directions) g_i,   dV = dL Z / tau.
/// Autograd through logsumexp, diagonal, logaddexp and the sum would build and add several
/// `[n, n]` gradients per direction; this makes two exponentials and one product. The input
/// side is detached, so no `dZ`.
/// The backward of InfoNCE's normalisers (the logsumexp over a row, over a column) with respect
/// to the logits: for each direction whose logsumexp is defined, its softmax exp(logits - lse)
/// times the incoming gradient. `rows_lse`/`cols_lse` and `rows_grad`/`cols_grad` come broadcast
/// to the logits' shape. Returns the sum with the number of directions, which the caller takes
/// (times the gradient) off the positives on its diagonal.
inline std::pair<torch::Tensor, double> normaliser_backward(const torch::Tensor& logits, const torch::Tensor& rows_lse,
                                                            const torch::Tensor& rows_grad,
                                                            const torch::Tensor& cols_lse,
                                                            const torch::Tensor& cols_grad) {
  torch::Tensor dl;
  double directions = 0;
  if (rows_lse.defined()) {
    dl = (logits - rows_lse).exp_().mul_(rows_grad);
    directions += 1;
  }
  if (cols_lse.defined()) {
    auto dc = (logits - cols_lse).exp_().mul_(cols_grad);
    dl = dl.defined() ? dl.add_(dc) : dc;
    directions += 1;
  }
  return {dl, directions};
}

/// Undefined stays undefined; otherwise `t.unsqueeze(dim)`.
inline torch::Tensor unsqueeze_defined(const torch::Tensor& t, int64_t dim) {
  return t.defined() ? t.unsqueeze(dim) : t;
}

struct SharedSimilarityNCE : public torch::autograd::Function<SharedSimilarityNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& output,
                               const torch::Tensor& input, double tau, double fill, bool rows, bool cols) {
    auto logits = torch::bmm(output, input.transpose(1, 2)).div_(tau);  // [B', n, n]: rows output, columns input
    const auto normaliser = [&](const torch::Tensor& l) {
      auto lse = l.logsumexp(-1);
      return std::isfinite(fill) ? torch::logaddexp(lse, torch::full_like(lse, fill)) : lse;
    };
    auto pos = logits.diagonal(0, -2, -1);
    torch::Tensor r, c, loss;
    if (rows) {
      r = normaliser(logits);
      loss = r - pos;
    }
    if (cols) {
      c = normaliser(logits.transpose(1, 2));
      loss = loss.defined() ? loss + (c - pos) : c - pos;
    }
    ctx->save_for_backward({logits, input, r, c});
    ctx->saved_data["tau"] = tau;
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &input = saved[1], &r = saved[2], &c = saved[3];
    auto g = grads[0] / ctx->saved_data["tau"].toDouble();  // [B', n]: 1/tau of dL/dS folded in
    auto [dl, directions] = normaliser_backward(logits, unsqueeze_defined(r, -1), g.unsqueeze(-1),
                                                unsqueeze_defined(c, -2), g.unsqueeze(-2));
    dl.diagonal(0, -2, -1).sub_(g * directions);
    return {torch::bmm(dl, input), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

/// `info_nce` on checked tensors and options (`options.check_finite()` is not read). The checks
/// that depend on the graph size (nodes per graph, `hard_negatives`, `1 / temperature` in the
/// computation's dtype) are made here, for the losses' pooled graphs too.
inline torch::Tensor info_nce(const torch::Tensor& output, const torch::Tensor& input, const InfoNCEOptions& options) {
  constexpr const char* fn = "info_nce";
  const double tau = options.temperature();
  const bool batched = output.dim() == 3;
  auto v = patchgcl::detail::compute_precision(batched ? output : output.unsqueeze(0));
  auto z = patchgcl::detail::compute_precision(batched ? input : input.unsqueeze(0)).detach();
  const int64_t B = v.size(0), N = v.size(1), C = v.size(2);
  if (options.negatives() == Negatives::kWholeBatch) {
    v = v.reshape({1, B * N, C});
    z = z.reshape({1, B * N, C});
  }
  const int64_t n = v.size(1);
  TORCH_CHECK(n >= 2, fn, ": needs at least 2 nodes per graph (one positive and one negative), got N = ", n);
  if (options.pruning() == Pruning::kHardestPerAnchor) {
    TORCH_CHECK(options.hard_negatives() >= 1 && options.hard_negatives() <= n - 1, fn,
                ": `hard_negatives` must be in [1, N - 1 = ", n - 1, "] for N = ", n,
                " nodes per graph, got ", options.hard_negatives());
  } else if (options.pruning() == Pruning::kReferenceColumnSort) {
    TORCH_CHECK(options.hard_negatives() >= 1 && options.hard_negatives() <= n, fn,
                ": `hard_negatives` must be in [1, N = ", n, "] (columns of the negative block), got ",
                options.hard_negatives());
  }

  const double fill = scaled_diagonal_value(v.scalar_type(), tau, options.diagonal_value(), fn);
  torch::Tensor loss;
  if (options.pruning() == Pruning::kNone) {
    const auto d = options.direction();
    loss = SharedSimilarityNCE::apply(v, z, tau, fill, d != Direction::kInputToOutput,
                                      d != Direction::kOutputToInput);
  } else {
    auto logits = torch::bmm(v, z.transpose(1, 2)) / tau;  // [B', n, n]: rows output, columns input
    switch (options.direction()) {
      case Direction::kOutputToInput:
        loss = anchor_losses(logits, fill, options);
        break;
      case Direction::kInputToOutput:
        loss = anchor_losses(logits.transpose(1, 2), fill, options);
        break;
      case Direction::kBoth:
        loss = anchor_losses(logits, fill, options) + anchor_losses(logits.transpose(1, 2), fill, options);
        break;
    }
  }
  loss = options.reduction() == Reduction::kMean ? loss.mean() : loss.reshape({B, N});
  return batched || options.reduction() == Reduction::kMean ? loss : loss.squeeze(0);
}

}  // namespace detail

/// InfoNCE between corresponding nodes of two graphs (Eq. 4), CUT's PatchNCE and PUT.
///
/// `output` (the output image G(x)'s nodes: the paper's `v_i`, CUT's queries `q_i`) and `input`
/// (the input image x's nodes: `z_i`, CUT's keys `k_i`) are `[B, N, C]` (one graph per image) or
/// `[N, C]`, usually unit vectors. The input side is detached. With `S_ij = <v_i, z_j> / tau`,
/// the anchor i of the output-to-input direction has
///   loss_i = -log( exp(S_ii) / (exp(S_ii) + sum_{j != i} exp(S_ij) + exp(diagonal_value / tau)) )
/// and the input-to-output direction (Eq. 4 as written) is the same on `S^T` (both share one
/// matrix per image). Half/bfloat16 inputs are computed in float32.
///
///   auto loss = info_nce(v, z, InfoNCEOptions().direction(Direction::kBoth));  // PatchGCL code
///   auto put  = info_nce(v, z, InfoNCEOptions().pruning(Pruning::kReferenceColumnSort));  // PUT code
inline torch::Tensor info_nce(const torch::Tensor& output, const torch::Tensor& input, const InfoNCEOptions& options = {}) {
  constexpr const char* fn = "info_nce";
  detail::check_info_nce_arguments(output, input, options, fn);
  auto loss = detail::info_nce(output, input, options);
  // Finite unit-scale inputs never give NaN; raw features of huge magnitude (or a tiny
  // temperature) overflow the similarities.
  patchgcl::detail::check_finite_result(loss, options.check_finite(), fn, "loss");
  return loss;
}

}  // namespace functional
}  // namespace patchgcl
