#pragma once

// Property-test cases of the functional API: one generator per public function. Each draws its
// arguments with `Gen`, calls the function and records the outputs and their expected shapes
// in `Case` (tests/test_properties.cpp checks the rules).

#include "properties/generator.hpp"

namespace patchgcl_property {

namespace F = patchgcl::functional;

inline void l2_normalize_case(Gen& g, Case& c) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(false);
  std::vector<int64_t> shape;
  const int64_t rank = g.bad(0.03) ? 0 : g.integer(1, 4);
  for (int64_t i = 0; i < rank; ++i) shape.push_back(g.size(1, 5));
  double eps = g.pick<double>({1e-12, 1e-7, 1e-3});
  if (g.bad()) eps = g.pick<double>({0.0, -1.0, kNaN, kInf});
  const auto mode = g.chance(0.5) ? F::L2Eps::kClamp : F::L2Eps::kAdd;
  const auto check = g.finite_check();
  auto x = g.leaf(g.tensor(shape, dtype, v));
  c.what = "l2_normalize(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(x.sizes()) + ")";
  auto out = F::l2_normalize(x, eps, mode, check);
  c.outputs = {out};
  c.shapes = {shape};
  c.extra = [out, x] {
    // unit or shorter, in the input's dtype
    ensure(out.scalar_type() == x.scalar_type(), "dtype of the input");
    ensure(out.to(torch::kFloat64).norm(2, -1).le(1.0 + 1e-2).all().item<bool>(), "norms <= 1");
  };
}

inline void cosine_adjacency_case(Gen& g, Case& c) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(false);
  const auto shape = g.node_shape(g.size(1, 3), g.size(1, 7), g.size(1, 5));
  CosineAdjacencyOptions o;
  o.threshold(g.real(-1.0, 1.0));
  if (g.bad()) o.threshold(g.pick<double>({1.5, -1.01, kNaN}));
  o.comparison(g.chance(0.5) ? Comparison::kGreater : Comparison::kGreaterEqual);
  o.diagonal(g.pick<Diagonal>({Diagonal::kAsComputed, Diagonal::kZero, Diagonal::kOne}));
  o.eps(g.bad() ? g.pick<double>({0.0, -1e-8}) : 1e-8).normalize(g.chance(0.7)).check_finite(g.finite_check());
  auto f = g.tensor(shape, dtype, v);
  c.what =
      "cosine_adjacency(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(f.sizes()) + ")";
  auto a = F::cosine_adjacency(f, o);
  auto expected = shape;
  if (shape.size() >= 2) expected.back() = shape[shape.size() - 2];
  c.outputs = {a};
  c.shapes = {expected};
  c.extra = [a, dtype] {
    ensure(a.scalar_type() == computed_dtype(dtype), "float32 for reduced floats, else the features' dtype");
    ensure((a.eq(0) | a.eq(1)).all().item<bool>(), "0/1 entries");
  };
}

inline void normalize_adjacency_case(Gen& g, Case& c) {
  const int64_t n = g.size(1, 7);
  std::vector<int64_t> shape = g.chance(0.5) ? std::vector<int64_t>{g.integer(1, 3), n, n} : std::vector<int64_t>{n, n};
  if (g.bad(0.03)) shape = g.pick<std::vector<int64_t>>({{n, n + 1}, {n}, {1, 1, n, n}});
  auto dtype = g.pick<torch::ScalarType>(
      {torch::kBool, torch::kLong, torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16});
  if (g.bad(0.02)) dtype = torch::kComplexFloat;
  torch::Tensor a;
  std::string values = "0/1";
  if (c10::isFloatingType(dtype) && g.chance(0.4)) {
    const auto v = g.values(false);  // weighted graphs, negative weights included
    values = values_name(v);
    a = g.tensor(shape, dtype, v);
  } else {
    a = g.graph(shape, dtype == torch::kComplexFloat ? torch::kFloat32 : dtype).to(dtype);
  }
  a = g.leaf(a);
  NormalizeAdjacencyOptions o;
  o.normalization(g.chance(0.5) ? Normalization::kSymmetric : Normalization::kRandomWalk);
  o.self_loops(g.pick<SelfLoops>({SelfLoops::kNone, SelfLoops::kOne, SelfLoops::kDouble}));
  o.check_finite(g.finite_check());
  c.what = "normalize_adjacency(" + values + " " + c10::toString(dtype) + " " + c10::str(a.sizes()) + ")";
  auto abar = F::normalize_adjacency(a, o);
  c.outputs = {abar};
  c.shapes = {shape};
}

inline void random_patch_ids_case(Gen& g, Case& c) {
  std::vector<int64_t> shape{g.size(1, 2), g.size(1, 3), g.size(1, 5), g.size(1, 5)};
  if (g.bad(0.03)) shape.pop_back();
  auto map = g.tensor(shape, g.feature_dtype(), Values::kNormal);
  const int64_t locations = shape.size() == 4 ? shape[2] * shape[3] : 1;
  int64_t num = g.integer(1, std::max<int64_t>(1, locations));
  if (g.bad()) num = g.pick<int64_t>({0, -1, locations + 1});
  c.what = "random_patch_ids(" + c10::str(map.sizes()) + ", " + std::to_string(num) + ")";
  auto ids = F::random_patch_ids(map, num);
  c.outputs = {ids};
  c.shapes = {{num}};
  c.extra = [ids, locations, num] {
    ensure(ids.scalar_type() == torch::kLong, "int64 ids");
    ensure(distinct(ids), "distinct ids");
    ensure(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < locations, "ids in [0, H*W)");
    (void)num;
  };
}

inline void sample_patches_case(Gen& g, Case& c) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(false);
  std::vector<int64_t> shape{g.size(1, 2), g.size(1, 4), g.size(1, 5), g.size(1, 5)};
  if (g.bad(0.03)) shape.pop_back();
  auto map = g.leaf(g.tensor(shape, dtype, v));
  const int64_t locations = shape.size() == 4 ? shape[2] * shape[3] : 1;
  const int64_t n = g.size(1, 8);
  auto ids = torch::randint(0, std::max<int64_t>(1, locations), {n}, torch::kLong);
  if (n == 0) c.invalid = true;
  if (g.chance(0.2)) ids = ids.to(torch::kInt32);
  if (g.bad()) ids = ids + g.pick<int64_t>({locations, -locations - 1});
  if (g.bad(0.03)) ids = ids.to(g.pick<torch::ScalarType>({torch::kFloat32, torch::kBool}));
  if (g.bad(0.02)) ids = ids.reshape({1, n});
  ids = g.maybe_elsewhere(ids);
  const auto check = g.finite_check();
  c.what = "sample_patches(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(map.sizes()) +
           ", ids " + (ids.defined() ? c10::str(ids.sizes()) : "undefined") + ")";
  auto nodes = F::sample_patches(map, ids, check);
  c.outputs = {nodes};
  c.shapes = {{shape[0], n, shape[1]}};
  // NaN elsewhere in the map is not sampled: only the sampled values decide.
  if (c.nonfinite && torch::isfinite(nodes).all().item<bool>()) c.nonfinite = false;
}

inline InfoNCEOptions random_info_nce_options(Gen& g, int64_t anchors) {
  InfoNCEOptions o;
  o.temperature(g.pick<double>({0.07, 0.5, 1.0, 0.01}));
  if (g.chance(0.03)) {  // logits beyond the dtype: an error, of kind option_value or overflow
    o.temperature(g.pick<double>({1e-40, 1e-300}));
    g.c->risky = true;
  }
  if (g.bad()) o.temperature(g.pick<double>({0.0, -0.07, kNaN, kInf}));
  o.diagonal_value(g.pick<double>({-10.0, InfoNCEOptions::kNoDiagonal, 0.0}));
  if (g.bad(0.02)) o.diagonal_value(g.pick<double>({kInf, kNaN}));
  o.direction(g.pick<Direction>({Direction::kOutputToInput, Direction::kInputToOutput, Direction::kBoth}));
  o.pruning(g.pick<Pruning>({Pruning::kNone, Pruning::kHardestPerAnchor, Pruning::kReferenceColumnSort}));
  const int64_t most = o.pruning() == Pruning::kHardestPerAnchor ? anchors - 1 : anchors;
  o.hard_negatives(g.integer(1, std::max<int64_t>(1, most)));
  if (o.pruning() != Pruning::kNone && g.bad()) o.hard_negatives(g.pick<int64_t>({0, -2, most + 1}));
  o.reduction(g.chance(0.5) ? Reduction::kMean : Reduction::kNone);
  return o;
}

inline void info_nce_case(Gen& g, Case& c) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(true);
  const int64_t b = g.size(1, 3), n = g.size(1, 7), ch = g.size(1, 5);
  const auto vshape = g.node_shape(b, n, ch);
  auto zshape = vshape;
  if (g.bad(0.03) && !zshape.empty()) zshape.back() += 1;
  const bool whole_batch = g.chance(0.3);
  const int64_t anchors = whole_batch && vshape.size() == 3 ? b * n : n;
  if (anchors < 2) c.invalid = true;  // one node has no negative
  auto o = random_info_nce_options(g, anchors);
  o.negatives(whole_batch ? Negatives::kWholeBatch : Negatives::kSameImage).check_finite(g.finite_check());
  auto output = g.leaf(g.tensor(vshape, dtype, v));
  auto zdtype = g.bad(0.03) ? (dtype == torch::kFloat32 ? torch::kFloat64 : torch::kFloat32) : dtype;
  auto input = g.maybe_elsewhere(g.tensor(zshape, zdtype, g.values(true)));
  c.what = "info_nce(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(output.sizes()) +
           ", pruning " + std::to_string(static_cast<int>(o.pruning())) + " k=" + std::to_string(o.hard_negatives()) +
           ", tau " + std::to_string(o.temperature()) + ")";
  auto loss = F::info_nce(output, input, o);
  std::vector<int64_t> expected;
  if (o.reduction() == Reduction::kNone)
    expected = vshape.size() == 3 ? std::vector<int64_t>{b, n} : std::vector<int64_t>{n};
  c.outputs = {loss};
  c.shapes = {expected};
  c.extra = [loss, dtype] { ensure(loss.scalar_type() == computed_dtype(dtype), "float32 for reduced floats"); };
}

/// A normalised adjacency for `x`'s graphs (or, invalid, one that does not fit).
inline torch::Tensor abar_for(Gen& g, const std::vector<int64_t>& xshape, torch::ScalarType dtype) {
  std::vector<int64_t> shape;
  if (xshape.size() == 3) shape = {xshape[0], xshape[1], xshape[1]};
  else if (xshape.size() == 2) shape = {xshape[0], xshape[0]};
  else shape = {2, 2};
  auto a = F::normalize_adjacency(g.graph(shape, torch::kFloat32)).to(dtype);
  if (g.bad(0.03)) a = torch::cat({a, a.narrow(-1, 0, 1)}, -1);  // [.., N, N + 1]
  if (a.dim() == 3 && g.bad(0.03)) a = a[0];                     // one graph for a batch
  if (a.is_floating_point() && g.chance(0.02)) {
    a.view({-1})[0] = kNaN;
    g.c->nonfinite = true;
  }
  return g.maybe_elsewhere(a);
}

inline void hop_features_case(Gen& g, Case& c, bool shared) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(false);
  const auto shape = g.node_shape(g.size(1, 3), g.size(1, 6), g.size(1, 4));
  int64_t hops = g.integer(0, 3);
  if (g.bad()) hops = -1;
  auto x = g.leaf(g.tensor(shape, dtype, v));
  auto abar_dtype = dtype;
  if (g.bad(0.03)) abar_dtype = dtype == torch::kFloat64 ? torch::kFloat32 : torch::kFloat64;
  auto abar = abar_for(g, shape, abar_dtype);
  const auto check = g.finite_check();
  const int64_t width = shape.empty() ? 0 : (hops + 1) * shape.back();
  c.what = std::string(shared ? "shared_" : "") + "hop_features(" + values_name(v) + " " + c10::toString(dtype) + " " +
           c10::str(x.sizes()) + ", hops " + std::to_string(hops) + ")";
  if (!shared) {
    auto out = F::hop_features(x, abar, hops, check);
    c.outputs = {out};
    c.shapes = {with_last(shape, width)};
    return;
  }
  auto input =
      g.tensor(g.bad(0.03) && !shape.empty() ? with_last(shape, shape.back() + 1) : shape, dtype, g.values(false));
  auto out = F::shared_hop_features(x, input, abar, hops, check);
  c.outputs = {out.first, out.second};
  c.shapes = {with_last(shape, width), with_last(shape, width)};
  c.extra = [out] { ensure(!out.second.requires_grad(), "the input side is detached"); };
}
}  // namespace patchgcl_property
