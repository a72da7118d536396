#pragma once

// Property-test cases of the modules: TAGConv, TopKPool and the two composed losses.

#include "properties/functional_cases.hpp"

namespace patchgcl_property {

inline void tag_conv_case(Gen& g, Case& c) {
  const int64_t in = g.bad(0.02) ? 0 : g.integer(1, 4), out = g.bad(0.02) ? 0 : g.integer(1, 4);
  TAGConvOptions o(in, out);
  o.hops(g.bad() ? -1 : g.integer(0, 3))
      .bias(g.chance(0.5))
      .init_std(g.bad() ? -0.1 : g.pick<double>({0.02, 0.0, 1.0}));
  o.check_finite(g.finite_check());
  c.what = "TAGConv(" + std::to_string(in) + ", " + std::to_string(out) + ", hops " + std::to_string(o.hops()) + ")";
  TAGConv conv(o);
  const bool f64_module = g.chance(0.2);
  if (f64_module) conv->to(torch::kFloat64);
  auto dtype = g.feature_dtype();
  // float32 features into a float64 module (or the reverse) is a documented error
  if (c10::isFloatingType(dtype) && !(dtype == torch::kHalf || dtype == torch::kBFloat16) &&
      (dtype == torch::kFloat64) != f64_module)
    c.invalid = true;
  const auto v = g.values(false);
  const auto shape = g.node_shape(g.size(1, 3), g.size(1, 6), g.bad(0.03) ? in + 1 : in);
  auto x = g.leaf(g.tensor(shape, dtype, v));
  auto abar = abar_for(g, shape, g.pick<torch::ScalarType>({torch::kFloat32, torch::kFloat64, torch::kHalf}));
  c.what += " on " + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(x.sizes());
  for (auto& p : conv->parameters()) c.leaves.push_back(p);
  const int mode = static_cast<int>(g.integer(0, 2));
  if (mode == 0) {
    auto z = conv(x, abar);
    c.outputs = {z};
    c.shapes = {with_last(shape, out)};
  } else if (mode == 1) {
    auto input = g.tensor(shape, g.chance(0.8) ? dtype : g.float_dtype(), g.values(false));
    if (input.scalar_type() != dtype &&
        !(input.scalar_type() == torch::kHalf || input.scalar_type() == torch::kBFloat16) &&
        (input.scalar_type() == torch::kFloat64) != f64_module)
      c.invalid = true;
    auto vz = conv->forward_shared(x, input, abar);
    c.outputs = {vz.first, vz.second};
    c.shapes = {with_last(shape, out), with_last(shape, out)};
  } else {
    // only `l` matters here (the options were valid, or construction threw)
    c.leaves.clear();
    int64_t l = g.integer(0, std::max<int64_t>(0, o.hops()));
    if (g.chance(0.1)) l = g.pick<int64_t>({-1, o.hops() + 1});
    c.invalid = l < 0 || l > o.hops();
    c.nonfinite = c.risky = false;
    auto w = conv->hop_weight(l);
    c.outputs = {w};
    c.shapes = {{in, out}};
  }
}

inline void topk_pool_case(Gen& g, Case& c) {
  const int64_t ch = g.bad(0.02) ? 0 : g.integer(1, 4), n = g.size(1, 8);
  TopKPoolOptions o(ch);
  if (g.chance(0.5)) {
    o.ratio(g.real(0.05, 1.0));
    if (g.bad()) o.ratio(g.pick<double>({0.0, 1.5, kNaN}));
  } else {
    o.k(g.integer(2, std::max<int64_t>(2, n)));
    if (g.bad()) o.k(g.pick<int64_t>({1, n + 1}));
  }
  if (n < 2) c.invalid = true;  // at least 2 nodes are kept
  o.activation(g.chance(0.5) ? ScoreActivation::kSigmoid : ScoreActivation::kTanh).bias(g.chance(0.5));
  o.divide_by_norm(g.chance(0.3))
      .pooled_adjacency(g.chance(0.5) ? PooledAdjacency::kTwoHop : PooledAdjacency::kInduced);
  o.init_std(g.pick<double>({0.02, 0.0, 1.0}));  // 0: every score ties
  if (g.bad(0.02)) o.init_std(kNaN);
  o.check_finite(g.finite_check());
  c.what = "TopKPool(" + std::to_string(ch) + ")";
  TopKPool pool(o);
  auto dtype = g.feature_dtype();
  if (dtype == torch::kFloat64) c.invalid = true;  // float64 features, float32 parameters
  // huge input and output: d(<w, scores * output>)/dp ~ |output| |input| may exceed the dtype
  const auto v = g.values(true);
  const int64_t b = g.size(1, 3);
  const auto shape = g.node_shape(b, n, ch);
  auto input = g.leaf(g.tensor(shape, dtype, v));
  auto output = g.leaf(g.maybe_elsewhere(g.tensor(shape, dtype, g.values(true))));
  std::vector<int64_t> ashape;
  if (shape.size() == 3) ashape = {b, n, n};
  else ashape = {n, n};
  if (g.bad(0.03)) ashape.back() += 1;
  auto a = g.graph(ashape, g.pick<torch::ScalarType>({torch::kBool, torch::kFloat32, torch::kLong}));
  c.what += " on " + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(input.sizes());
  for (auto& p : pool->parameters()) c.leaves.push_back(p);
  auto out = pool(output, input, a);
  const int64_t k = pool->kept_nodes(n);
  const bool batched = shape.size() == 3;
  auto lead = [&](std::vector<int64_t> rest) {
    if (batched) rest.insert(rest.begin(), b);
    return rest;
  };
  c.outputs = {out.indices, out.scores, out.output, out.input, out.adjacency};
  c.shapes = {lead({k}), lead({k}), lead({k, ch}), lead({k, ch}), lead({k, k})};
  c.extra = [out, n, k] {
    auto idx = out.indices.reshape({-1, k});
    for (int64_t r = 0; r < idx.size(0); ++r) ensure(distinct(idx[r]), "distinct kept nodes, ties too");
    ensure(out.indices.min().item<int64_t>() >= 0 && out.indices.max().item<int64_t>() < n, "kept nodes in [0, N)");
  };
}

/// Feature pyramids for a multi-layer loss with `channels` per layer.
inline void loss_inputs(Gen& g, Case& c, const std::vector<int64_t>& channels, int64_t num_patches,
                        std::vector<torch::Tensor>& out, std::vector<torch::Tensor>& in,
                        std::vector<torch::Tensor>& ids, torch::ScalarType dtype, Values v) {
  const int64_t b = g.size(1, 2);
  const bool given_ids = g.chance(0.3);
  for (size_t l = 0; l < channels.size(); ++l) {
    const int64_t h = g.integer(1, 4), w = g.integer(2, 4);
    if (h * w < num_patches && !given_ids) c.invalid = true;  // more patches than locations
    std::vector<int64_t> shape{b, g.bad(0.02) ? channels[l] + 1 : channels[l], h, w};
    out.push_back(g.leaf(g.tensor(shape, dtype, v)));
    auto in_shape = g.bad(0.02) ? std::vector<int64_t>{b, channels[l], h + 1, w} : shape;
    in.push_back(g.maybe_elsewhere(g.tensor(in_shape, dtype, g.values(false))));
    if (given_ids) {
      // explicit ids: any count >= 2 per layer, different across layers, repeats allowed
      const int64_t n = g.integer(2, 6);
      ids.push_back(torch::randint(0, h * w, {n}, torch::kLong));
    }
  }
  if (g.bad(0.02)) out.pop_back();
  if (given_ids && g.bad(0.02)) ids.push_back(ids.back());  // one id tensor too many
}

/// The InfoNCE options of a composed loss, from its preset's.
inline InfoNCEOptions loss_info_nce(Gen& g, InfoNCEOptions o) {
  if (g.chance(0.03)) {
    o.temperature(g.pick<double>({1e-40, 1e-300}));
    g.c->risky = true;
  }
  if (g.bad()) o.temperature(g.pick<double>({0.0, -1.0, kNaN}));
  if (g.chance(0.3))
    o.direction(g.pick<Direction>({Direction::kOutputToInput, Direction::kInputToOutput, Direction::kBoth}));
  if (g.chance(0.2)) o.diagonal_value(g.pick<double>({-10.0, InfoNCEOptions::kNoDiagonal}));
  if (g.bad(0.02)) o.reduction(Reduction::kNone);  // the losses reduce to a scalar
  return o.check_finite(g.finite_check());
}

/// Whether InfoNCE's pruning fits graphs of `n` nodes.
inline bool pruning_fits(const InfoNCEOptions& o, int64_t n) {
  if (o.pruning() == Pruning::kHardestPerAnchor) return o.hard_negatives() <= n - 1;
  if (o.pruning() == Pruning::kReferenceColumnSort) return o.hard_negatives() <= n;
  return true;
}

inline void patch_nce_case(Gen& g, Case& c) {
  std::vector<int64_t> channels;
  const int64_t layers = g.bad(0.02) ? 0 : g.integer(1, 3);
  for (int64_t l = 0; l < layers; ++l) channels.push_back(g.bad(0.02) ? 0 : g.integer(1, 5));
  const bool put = g.chance(0.3);
  auto o = put ? PatchNCELossOptions::put(channels, g.integer(1, 3)) : PatchNCELossOptions(channels);
  o.num_patches(g.bad() ? g.pick<int64_t>({1, 0}) : g.integer(2, 6)).nc(g.bad(0.02) ? 0 : g.integer(1, 6));
  o.use_mlp(g.chance(0.7)).l2_eps(g.bad(0.02) ? 0.0 : 1e-7).init_std(g.pick<double>({0.02, 0.0, 1.0}));
  if (!put && g.chance(0.2)) o.info_nce().pruning(Pruning::kHardestPerAnchor).hard_negatives(g.integer(1, 3));
  o.info_nce(loss_info_nce(g, o.info_nce()));
  o.check_finite(o.info_nce().check_finite());  // the loss's own switch, drawn with InfoNCE's
  c.what = "PatchNCELoss(" + std::to_string(layers) + " layers, N " + std::to_string(o.num_patches()) + ", put " +
           std::to_string(put) + ")";
  PatchNCELoss loss(o);
  auto dtype = g.feature_dtype();
  if (dtype == torch::kFloat64 && o.use_mlp()) c.invalid = true;  // float32 head
  const auto v = g.values(false);
  std::vector<torch::Tensor> out, in, ids;
  loss_inputs(g, c, channels, o.num_patches(), out, in, ids, dtype, v);
  // pruning keeps k negatives of each graph's N nodes
  for (auto& i : ids)
    if (!pruning_fits(o.info_nce(), i.numel())) c.invalid = true;
  if (ids.empty() && !pruning_fits(o.info_nce(), o.num_patches())) c.invalid = true;
  c.what += " on " + std::string(values_name(v)) + " " + c10::toString(dtype);
  for (auto& p : loss->parameters()) c.leaves.push_back(p);
  auto value = loss(out, in, ids);
  c.outputs = {value};
  c.shapes = {{}};
}

inline void graph_nce_case(Gen& g, Case& c) {
  std::vector<int64_t> channels;
  const int64_t layers = g.bad(0.02) ? 0 : g.integer(1, 2);
  for (int64_t l = 0; l < layers; ++l) channels.push_back(g.bad(0.02) ? 0 : g.integer(1, 5));
  auto o = g.chance(0.5) ? GraphNCELossOptions::reference(channels) : GraphNCELossOptions::paper(channels);
  o.num_patches(g.bad() ? 1 : g.integer(2, 8)).nc(g.integer(1, 6)).hops(g.bad() ? -1 : g.integer(0, 2));
  o.pooled_hops(g.integer(0, 2)).pooling_levels(g.integer(0, 2)).down_scale(g.bad() ? 0 : g.integer(1, 4));
  std::vector<double> weights(static_cast<size_t>(o.pooling_levels() + 1), 1.0);
  if (g.bad()) weights.pop_back();
  if (g.bad(0.02) && !weights.empty()) weights[0] = kNaN;  // (pop_back above may leave none)
  o.level_weights(std::move(weights));
  o.adjacency().threshold(g.bad() ? 2.0 : g.real(-1.0, 1.0));
  o.info_nce(loss_info_nce(g, o.info_nce()));
  o.init_std(g.pick<double>({0.02, 0.0, 1.0})).check_finite(o.info_nce().check_finite());
  c.what = "GraphNCELoss(" + std::to_string(layers) + " layers, N " + std::to_string(o.num_patches()) + ", levels " +
           std::to_string(o.pooling_levels()) + ")";
  GraphNCELoss loss(o);
  auto dtype = g.feature_dtype();
  if (dtype == torch::kFloat64) c.invalid = true;  // float32 parameters
  const auto v = g.values(false);
  std::vector<torch::Tensor> out, in, ids;
  loss_inputs(g, c, channels, o.num_patches(), out, in, ids, dtype, v);
  c.what += " on " + std::string(values_name(v)) + " " + c10::toString(dtype);
  for (auto& p : loss->parameters()) c.leaves.push_back(p);
  auto value = loss(out, in, ids);
  c.outputs = {value};
  c.shapes = {{}};
}
}  // namespace patchgcl_property
