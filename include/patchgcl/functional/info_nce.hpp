#pragma once

// Eq. 4 (and Eq. 9 on pooled graphs), CUT's PatchNCE and PUT's negative pruning, on one
// similarity matrix per image.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/info_nce_normaliser.hpp>
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
inline double scaled_diagonal_value(torch::ScalarType computation, double tau, double diagonal_value, const char* fn) {
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
    case Pruning::kNone:
      // logsumexp over [pos_i, S_ij (j != i), fill] is the row's normaliser: no [n, n] mask and
      // no concatenated copy of the logits.
      return normaliser(logits, -1, fill).lse.squeeze(-1) - pos;
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

/// InfoNCE without pruning (Eq. 4 / 9, CUT's PatchNCE) on a batch of similarity matrices: `v`,
/// `z` `[B', n, D]`, `S = V Z^T / tau` (rows: output nodes `v_i`, columns: input nodes `z_j`).
/// Per anchor, the losses of the requested directions summed per node: row i `r_i - S_ii` with
/// `r_i` the rows' normaliser (`normaliser` over j, with `fill`), column j `c_j - S_jj` with the
/// columns' (over i). The normalisers are kept for `similarity_nce_backward` (undefined when
/// their direction is not requested). The same values as `anchor_losses` up to rounding.
/// Used by `SharedSimilarityNCE` and the losses' fused nodes (modules/detail/fused_ops.hpp).
struct SimilarityNCE {
  torch::Tensor per_anchor;  ///< [B', n]
  Normaliser rows, cols;
};

inline SimilarityNCE similarity_nce(const torch::Tensor& v, const torch::Tensor& z, double tau, double fill, bool rows,
                                    bool cols) {
  auto logits = torch::bmm(v, z.transpose(1, 2)).div_(tau);  // [B', n, n]
  SimilarityNCE r;
  torch::Tensor lse;
  if (rows) {
    r.rows = normaliser(logits, -1, fill);
    lse = r.rows.lse.squeeze(-1);
  }
  if (cols) {
    r.cols = normaliser(logits, -2, fill);
    lse = lse.defined() ? lse + r.cols.lse.squeeze(-2) : r.cols.lse.squeeze(-2);
  }
  r.per_anchor = lse.sub(logits.diagonal(0, -2, -1), static_cast<double>(rows + cols));
  return r;
}

/// `dV` (`[B', n, D]`) of `similarity_nce`'s per-anchor losses for the upstream gradient `g` of
/// every anchor's loss divided by `tau`: `[B', n]`, or 0-dim when it is the same for every
/// anchor (then applied once, to the product). With `normaliser_backward`,
///   dS_ij = softmax_rows(S)_ij g_i + softmax_cols(S)_ij g_j - [i = j] (directions) g_i,   dV = dS Z.
/// The input side is detached, so no `dZ`.
inline torch::Tensor similarity_nce_backward(const torch::Tensor& z, const Normaliser& rows, const Normaliser& cols,
                                             const torch::Tensor& g) {
  const bool per_anchor = g.dim() > 0;
  const double directions = static_cast<double>(rows.e.defined() + cols.e.defined());
  auto ds = per_anchor ? normaliser_backward(rows, g.unsqueeze(-1), cols, g.unsqueeze(-2))
                       : normaliser_backward(rows, torch::Tensor(), cols, torch::Tensor());
  if (per_anchor) ds.diagonal(0, -2, -1).sub_(g * directions);
  else ds.diagonal(0, -2, -1).sub_(directions);
  auto dv = torch::bmm(ds, z);
  return per_anchor ? dv : dv.mul_(g);
}

/// `similarity_nce` as one autograd node with its written-out backward: autograd through the
/// logsumexps, the diagonal and the sum would build and add several `[n, n]` gradients per
/// direction; this reuses the forward's exponentials and makes one product.
struct SharedSimilarityNCE : public torch::autograd::Function<SharedSimilarityNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& output,
                               const torch::Tensor& input, double tau, double fill, bool rows, bool cols) {
    auto nce = similarity_nce(output, input, tau, fill, rows, cols);
    ctx->save_for_backward({input, nce.rows.e, nce.rows.sum, nce.cols.e, nce.cols.sum});
    ctx->saved_data["tau"] = tau;
    return nce.per_anchor;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Normaliser rows{saved[1], saved[2], {}}, cols{saved[3], saved[4], {}};
    auto g = grads[0] / ctx->saved_data["tau"].toDouble();  // [B', n]: 1/tau of dL/dS folded in
    return {similarity_nce_backward(saved[0], rows, cols, g),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
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
                ": `hard_negatives` must be in [1, N - 1 = ", n - 1, "] for N = ", n, " nodes per graph, got ",
                options.hard_negatives());
  } else if (options.pruning() == Pruning::kReferenceColumnSort) {
    TORCH_CHECK(options.hard_negatives() >= 1 && options.hard_negatives() <= n, fn,
                ": `hard_negatives` must be in [1, N = ", n, "] (columns of the negative block), got ",
                options.hard_negatives());
  }

  const double fill = scaled_diagonal_value(v.scalar_type(), tau, options.diagonal_value(), fn);
  torch::Tensor loss;
  if (options.pruning() == Pruning::kNone) {
    const auto d = options.direction();
    loss = SharedSimilarityNCE::apply(v, z, tau, fill, d != Direction::kInputToOutput, d != Direction::kOutputToInput);
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
inline torch::Tensor info_nce(const torch::Tensor& output, const torch::Tensor& input,
                              const InfoNCEOptions& options = {}) {
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
