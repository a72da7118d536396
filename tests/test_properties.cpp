// Property test: random shapes, dtypes, values and options through every public function and
// module. Every case either throws a c10::Error of a documented kind whose message starts with
// the name of a patchgcl function, or returns finite outputs of the documented shape whose
// gradients are finite. Cases built only from valid arguments and finite values must succeed.
//
// Seeded (PATCHGCL_PROPERTY_SEED, default 6) and bounded by a case count
// (PATCHGCL_PROPERTY_CASES, default 10000, about 6 s in Release on one core): the figures in
// docs/reliability.md come from the summary line this test prints.
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace patchgcl;
namespace F = patchgcl::functional;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Values { kNormal, kZeros, kConstant, kDuplicated, kTiny, kHuge, kMixed, kNaN, kInf };

const char* values_name(Values v) {
  switch (v) {
    case Values::kNormal: return "normal";
    case Values::kZeros: return "zeros";
    case Values::kConstant: return "constant";
    case Values::kDuplicated: return "duplicated";
    case Values::kTiny: return "tiny";
    case Values::kHuge: return "huge";
    case Values::kMixed: return "mixed";
    case Values::kNaN: return "nan";
    case Values::kInf: return "inf";
  }
  return "?";
}

/// Magnitudes per dtype: `huge` and `tiny` are as far out as the dtype allows while the
/// gradient of a normalisation (~1/|x|) and of InfoNCE (~|x| / tau) stays representable.
double huge_of(torch::ScalarType t) {
  return t == torch::kHalf ? 1e3 : t == torch::kFloat64 ? 1e150 : 1e30;
}
double tiny_of(torch::ScalarType t) {
  return t == torch::kHalf ? 1e-3 : t == torch::kFloat64 ? 1e-150 : 1e-30;
}

/// What one case did, for the rules checked by the harness.
struct Case {
  std::string what;             // description printed when a rule is broken
  std::string why;              // the choices that made it invalid
  bool invalid = false;         // an argument was chosen outside its documented domain
  bool nonfinite = false;       // NaN/Inf in an input
  bool risky = false;           // huge values where the documented result may be an overflow error
  bool scanned = true;          // the NaN/Inf scan is active
  bool half_small = false;      // half-precision zeros/tiny values: see Gen::tensor
  std::vector<torch::Tensor> outputs;
  std::vector<std::vector<int64_t>> shapes;  // expected shape of each output
  std::vector<torch::Tensor> leaves;         // inputs whose gradients must be finite
  std::function<void()> extra;               // further checks of a successful result
};

struct Gen {
  std::mt19937 rng;
  Case* c = nullptr;

  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng); }
  double real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
  template <typename T>
  T pick(const std::vector<T>& v) { return v[static_cast<size_t>(integer(0, static_cast<int64_t>(v.size()) - 1))]; }
  /// With probability `p`, marks the case invalid (noting the line that chose to) and returns true.
  bool bad(double p = 0.04, int line = __builtin_LINE()) {
    if (!chance(p)) return false;
    c->invalid = true;
    c->why += " [invalid: line " + std::to_string(line) + "]";
    return true;
  }

  torch::ScalarType float_dtype() {
    const int r = static_cast<int>(integer(0, 99));
    if (r < 45) return torch::kFloat32;
    if (r < 65) return torch::kFloat64;
    if (r < 82) return torch::kHalf;
    return torch::kBFloat16;
  }
  /// A floating dtype, or (invalid) an integer one.
  torch::ScalarType feature_dtype() { return bad(0.04) ? torch::kLong : float_dtype(); }

  /// A tensor dimension in [lo, hi], or 0 (an empty tensor is invalid: see tensor()).
  int64_t size(int64_t lo, int64_t hi) { return chance(0.02) ? 0 : integer(lo, hi); }

  /// Empty tensors are invalid arguments.
  torch::Tensor mark_empty(torch::Tensor t) {
    if (t.numel() == 0) {
      c->invalid = true;
      c->why += " [invalid: empty]";
    }
    return t;
  }

  FiniteCheck finite_check() {
    const int r = static_cast<int>(integer(0, 9));
    auto mode = r < 6 ? FiniteCheck::kAuto : r < 8 ? FiniteCheck::kAlways : FiniteCheck::kNever;
    if (mode == FiniteCheck::kNever) c->scanned = false;
    return mode;
  }

  Values values(bool huge_is_risky) {
    const int r = static_cast<int>(integer(0, 99));
    Values v = r < 40 ? Values::kNormal
             : r < 48 ? Values::kZeros
             : r < 55 ? Values::kConstant
             : r < 62 ? Values::kDuplicated
             : r < 71 ? Values::kTiny
             : r < 80 ? Values::kHuge
             : r < 90 ? Values::kMixed
             : r < 95 ? Values::kNaN
                      : Values::kInf;
    if (v == Values::kNaN || v == Values::kInf) c->nonfinite = true;
    if ((v == Values::kHuge || v == Values::kMixed) && huge_is_risky) c->risky = true;
    return v;
  }

  /// A tensor of `shape` and `dtype` whose last-dimension vectors follow `v`.
  torch::Tensor tensor(std::vector<int64_t> shape, torch::ScalarType dtype, Values v) {
    if (dtype == torch::kLong) return mark_empty(torch::randint(-3, 4, shape, torch::kLong));
    // The gradient of a normalisation at a vector shorter than eps is I / eps (1e12 for 1e-12):
    // finite in float32, float64 and bfloat16, beyond half's 65504 once cast back to a half input.
    if (dtype == torch::kHalf && (v == Values::kZeros || v == Values::kTiny || v == Values::kMixed))
      c->half_small = true;
    auto x = torch::randn(shape, torch::kFloat64);
    const int64_t n = x.numel();
    switch (v) {
      case Values::kNormal: break;
      case Values::kZeros: x.zero_(); break;
      case Values::kConstant: x.fill_(real(-2.0, 2.0)); break;
      case Values::kDuplicated:
        if (x.dim() >= 2 && x.size(-2) > 0) x = x.narrow(-2, 0, 1).expand_as(x).clone();
        break;
      case Values::kTiny: x.mul_(tiny_of(dtype)); break;
      case Values::kHuge: x.mul_(huge_of(dtype)); break;
      case Values::kMixed:
        if (x.dim() >= 1) {
          auto scale_shape = shape;
          scale_shape.back() = 1;
          auto pickers = torch::randint(0, 4, scale_shape, torch::kLong);
          auto scale = torch::where(pickers.eq(0), torch::zeros({}, torch::kFloat64),
                                    torch::where(pickers.eq(1), torch::full({}, huge_of(dtype), torch::kFloat64),
                                                 torch::where(pickers.eq(2), torch::full({}, tiny_of(dtype), torch::kFloat64),
                                                              torch::ones({}, torch::kFloat64))));
          x = x * scale;
        }
        break;
      case Values::kNaN:
      case Values::kInf:
        if (n > 0) {
          const double value = v == Values::kNaN ? kNaN : (chance(0.5) ? kInf : -kInf);
          x.view({-1})[integer(0, n - 1)] = value;
        }
        break;
    }
    return mark_empty(x.to(dtype));
  }

  /// Node features `[B, N, C]` or `[N, C]` (sometimes of another rank: invalid).
  std::vector<int64_t> node_shape(int64_t b, int64_t n, int64_t ch) {
    if (bad(0.03)) return pick<std::vector<int64_t>>({{ch}, {1, b, n, ch}, {}});
    return chance(0.5) ? std::vector<int64_t>{b, n, ch} : std::vector<int64_t>{n, ch};
  }

  /// A 0/1 adjacency with random edges, an edgeless or a complete graph.
  torch::Tensor graph(std::vector<int64_t> shape, torch::ScalarType dtype) {
    const int r = static_cast<int>(integer(0, 3));
    auto a = r == 0 ? torch::zeros(shape) : r == 1 ? torch::ones(shape) : torch::rand(shape).lt(0.4).to(torch::kFloat32);
    return mark_empty(a.to(dtype));
  }

  /// Makes a leaf that needs a gradient when its dtype can carry one.
  torch::Tensor leaf(torch::Tensor t, bool track = true) {
    if (t.defined() && t.is_floating_point()) {
      t.requires_grad_(true);
      if (track) c->leaves.push_back(t);
    }
    return t;
  }

  /// Sometimes moves `t` to the meta device (a device mismatch with the other arguments) or
  /// replaces it by an undefined tensor.
  torch::Tensor maybe_elsewhere(torch::Tensor t) {
    if (bad(0.02)) return t.detach().to(torch::kMeta);
    return bad(0.01) ? torch::Tensor() : t;
  }
};

/// A property of a successful result; the harness reports it as a rule violation.
void ensure(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

/// True when the 1-D `t` has no repeated value.
bool distinct(const torch::Tensor& t) {
  auto s = std::get<0>(t.sort());
  return t.numel() < 2 || (s.narrow(0, 1, t.numel() - 1) > s.narrow(0, 0, t.numel() - 1)).all().item<bool>();
}

torch::ScalarType computed_dtype(torch::ScalarType t) {
  return t == torch::kHalf || t == torch::kBFloat16 ? torch::kFloat32 : t;
}

std::vector<int64_t> with_last(std::vector<int64_t> s, int64_t last) {
  s.back() = last;
  return s;
}

// ---- one generator per public entry point ------------------------------------------------

void l2_normalize_case(Gen& g, Case& c) {
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

void cosine_adjacency_case(Gen& g, Case& c) {
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
  c.what = "cosine_adjacency(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(f.sizes()) + ")";
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

void normalize_adjacency_case(Gen& g, Case& c) {
  const int64_t n = g.size(1, 7);
  std::vector<int64_t> shape = g.chance(0.5) ? std::vector<int64_t>{g.integer(1, 3), n, n} : std::vector<int64_t>{n, n};
  if (g.bad(0.03)) shape = g.pick<std::vector<int64_t>>({{n, n + 1}, {n}, {1, 1, n, n}});
  auto dtype = g.pick<torch::ScalarType>({torch::kBool, torch::kLong, torch::kFloat32, torch::kFloat64, torch::kHalf,
                                          torch::kBFloat16});
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

void random_patch_ids_case(Gen& g, Case& c) {
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

void sample_patches_case(Gen& g, Case& c) {
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
  c.what = "sample_patches(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " +
           c10::str(map.sizes()) + ", ids " + (ids.defined() ? c10::str(ids.sizes()) : "undefined") + ")";
  auto nodes = F::sample_patches(map, ids, check);
  c.outputs = {nodes};
  c.shapes = {{shape[0], n, shape[1]}};
  // NaN elsewhere in the map is not sampled: only the sampled values decide.
  if (c.nonfinite && torch::isfinite(nodes).all().item<bool>()) c.nonfinite = false;
}

InfoNCEOptions random_info_nce_options(Gen& g, int64_t anchors) {
  InfoNCEOptions o;
  o.temperature(g.pick<double>({0.07, 0.5, 1.0, 0.01}));
  if (g.chance(0.03)) {  // logits beyond the dtype: an error, of kind option_value or overflow
    o.temperature(g.pick<double>({1e-40, 1e-300}));
    g.c->risky = true;
  }
  if (g.bad()) o.temperature(g.pick<double>({0.0, -0.07, kNaN, kInf}));
  o.diagonal_value(g.pick<double>({-10.0, InfoNCEOptions::kNoDiagonal, 0.0}));
  if (g.bad(0.02)) o.diagonal_value(g.pick<double>({kInf, kNaN}));
  o.direction(g.pick<Direction>({Direction::kQueryToKey, Direction::kKeyToQuery, Direction::kBoth}));
  o.pruning(g.pick<Pruning>({Pruning::kNone, Pruning::kHardestPerQuery, Pruning::kReferenceColumnSort}));
  const int64_t most = o.pruning() == Pruning::kHardestPerQuery ? anchors - 1 : anchors;
  o.hard_negatives(g.integer(1, std::max<int64_t>(1, most)));
  if (o.pruning() != Pruning::kNone && g.bad()) o.hard_negatives(g.pick<int64_t>({0, -2, most + 1}));
  o.reduction(g.chance(0.5) ? Reduction::kMean : Reduction::kNone);
  return o;
}

void info_nce_case(Gen& g, Case& c) {
  const auto dtype = g.feature_dtype();
  const auto v = g.values(true);
  const int64_t b = g.size(1, 3), n = g.size(1, 7), ch = g.size(1, 5);
  const auto qshape = g.node_shape(b, n, ch);
  auto kshape = qshape;
  if (g.bad(0.03) && !kshape.empty()) kshape.back() += 1;
  const bool whole_batch = g.chance(0.3);
  const int64_t anchors = whole_batch && qshape.size() == 3 ? b * n : n;
  if (anchors < 2) c.invalid = true;  // one node has no negative
  auto o = random_info_nce_options(g, anchors);
  o.negatives(whole_batch ? Negatives::kWholeBatch : Negatives::kSameImage).check_finite(g.finite_check());
  auto q = g.leaf(g.tensor(qshape, dtype, v));
  auto kdtype = g.bad(0.03) ? (dtype == torch::kFloat32 ? torch::kFloat64 : torch::kFloat32) : dtype;
  auto k = g.maybe_elsewhere(g.tensor(kshape, kdtype, g.values(true)));
  c.what = "info_nce(" + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(q.sizes()) +
           ", pruning " + std::to_string(static_cast<int>(o.pruning())) + " k=" + std::to_string(o.hard_negatives()) +
           ", tau " + std::to_string(o.temperature()) + ")";
  auto loss = F::info_nce(q, k, o);
  std::vector<int64_t> expected;
  if (o.reduction() == Reduction::kNone) expected = qshape.size() == 3 ? std::vector<int64_t>{b, n} : std::vector<int64_t>{n};
  c.outputs = {loss};
  c.shapes = {expected};
  c.extra = [loss, dtype] { ensure(loss.scalar_type() == computed_dtype(dtype), "float32 for reduced floats"); };
}

/// A normalised adjacency for `x`'s graphs (or, invalid, one that does not fit).
torch::Tensor abar_for(Gen& g, const std::vector<int64_t>& xshape, torch::ScalarType dtype) {
  std::vector<int64_t> shape;
  if (xshape.size() == 3) shape = {xshape[0], xshape[1], xshape[1]};
  else if (xshape.size() == 2) shape = {xshape[0], xshape[0]};
  else shape = {2, 2};
  auto a = F::normalize_adjacency(g.graph(shape, torch::kFloat32)).to(dtype);
  if (g.bad(0.03)) a = torch::cat({a, a.narrow(-1, 0, 1)}, -1);  // [.., N, N + 1]
  if (a.dim() == 3 && g.bad(0.03)) a = a[0];                       // one graph for a batch
  if (a.is_floating_point() && g.chance(0.02)) {
    a.view({-1})[0] = kNaN;
    g.c->nonfinite = true;
  }
  return g.maybe_elsewhere(a);
}

void hop_features_case(Gen& g, Case& c, bool shared) {
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
  auto key = g.tensor(g.bad(0.03) && !shape.empty() ? with_last(shape, shape.back() + 1) : shape, dtype, g.values(false));
  auto out = F::shared_hop_features(x, key, abar, hops, check);
  c.outputs = {out.first, out.second};
  c.shapes = {with_last(shape, width), with_last(shape, width)};
  c.extra = [out] { ensure(!out.second.requires_grad(), "the key side is detached"); };
}

void tag_conv_case(Gen& g, Case& c) {
  const int64_t in = g.bad(0.02) ? 0 : g.integer(1, 4), out = g.bad(0.02) ? 0 : g.integer(1, 4);
  TAGConvOptions o(in, out);
  o.hops(g.bad() ? -1 : g.integer(0, 3)).bias(g.chance(0.5)).init_std(g.bad() ? -0.1 : g.pick<double>({0.02, 0.0, 1.0}));
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
    auto key = g.tensor(shape, g.chance(0.8) ? dtype : g.float_dtype(), g.values(false));
    if (key.scalar_type() != dtype && !(key.scalar_type() == torch::kHalf || key.scalar_type() == torch::kBFloat16) &&
        (key.scalar_type() == torch::kFloat64) != f64_module)
      c.invalid = true;
    auto vz = conv->forward_shared(x, key, abar);
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

void topk_pool_case(Gen& g, Case& c) {
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
  o.divide_by_norm(g.chance(0.3)).pooled_adjacency(g.chance(0.5) ? PooledAdjacency::kTwoHop : PooledAdjacency::kInduced);
  o.init_std(g.pick<double>({0.02, 0.0, 1.0}));  // 0: every score ties
  if (g.bad(0.02)) o.init_std(kNaN);
  o.check_finite(g.finite_check());
  c.what = "TopKPool(" + std::to_string(ch) + ")";
  TopKPool pool(o);
  auto dtype = g.feature_dtype();
  if (dtype == torch::kFloat64) c.invalid = true;  // float64 features, float32 parameters
  // huge key and query: d(<w, scores * query>)/dp ~ |query| |key| may exceed the dtype
  const auto v = g.values(true);
  const int64_t b = g.size(1, 3);
  const auto shape = g.node_shape(b, n, ch);
  auto key = g.leaf(g.tensor(shape, dtype, v));
  auto query = g.leaf(g.maybe_elsewhere(g.tensor(shape, dtype, g.values(true))));
  std::vector<int64_t> ashape;
  if (shape.size() == 3) ashape = {b, n, n};
  else ashape = {n, n};
  if (g.bad(0.03)) ashape.back() += 1;
  auto a = g.graph(ashape, g.pick<torch::ScalarType>({torch::kBool, torch::kFloat32, torch::kLong}));
  c.what += " on " + std::string(values_name(v)) + " " + c10::toString(dtype) + " " + c10::str(key.sizes());
  for (auto& p : pool->parameters()) c.leaves.push_back(p);
  auto out = pool(key, query, a);
  const int64_t k = pool->kept_nodes(n);
  const bool batched = shape.size() == 3;
  auto lead = [&](std::vector<int64_t> rest) {
    if (batched) rest.insert(rest.begin(), b);
    return rest;
  };
  c.outputs = {out.indices, out.scores, out.key, out.query, out.adjacency};
  c.shapes = {lead({k}), lead({k}), lead({k, ch}), lead({k, ch}), lead({k, k})};
  c.extra = [out, n, k] {
    auto idx = out.indices.reshape({-1, k});
    for (int64_t r = 0; r < idx.size(0); ++r) ensure(distinct(idx[r]), "distinct kept nodes, ties too");
    ensure(out.indices.min().item<int64_t>() >= 0 && out.indices.max().item<int64_t>() < n, "kept nodes in [0, N)");
  };
}

/// Feature pyramids for a multi-layer loss with `channels` per layer.
void loss_inputs(Gen& g, Case& c, const std::vector<int64_t>& channels, int64_t num_patches,
                 std::vector<torch::Tensor>& out, std::vector<torch::Tensor>& in, std::vector<torch::Tensor>& ids,
                 torch::ScalarType dtype, Values v) {
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
InfoNCEOptions loss_info_nce(Gen& g, InfoNCEOptions o) {
  if (g.chance(0.03)) {
    o.temperature(g.pick<double>({1e-40, 1e-300}));
    g.c->risky = true;
  }
  if (g.bad()) o.temperature(g.pick<double>({0.0, -1.0, kNaN}));
  if (g.chance(0.3)) o.direction(g.pick<Direction>({Direction::kQueryToKey, Direction::kKeyToQuery, Direction::kBoth}));
  if (g.chance(0.2)) o.diagonal_value(g.pick<double>({-10.0, InfoNCEOptions::kNoDiagonal}));
  if (g.bad(0.02)) o.reduction(Reduction::kNone);  // the losses reduce to a scalar
  return o.check_finite(g.finite_check());
}

/// Whether InfoNCE's pruning fits graphs of `n` nodes.
bool pruning_fits(const InfoNCEOptions& o, int64_t n) {
  if (o.pruning() == Pruning::kHardestPerQuery) return o.hard_negatives() <= n - 1;
  if (o.pruning() == Pruning::kReferenceColumnSort) return o.hard_negatives() <= n;
  return true;
}

void patch_nce_case(Gen& g, Case& c) {
  std::vector<int64_t> channels;
  const int64_t layers = g.bad(0.02) ? 0 : g.integer(1, 3);
  for (int64_t l = 0; l < layers; ++l) channels.push_back(g.bad(0.02) ? 0 : g.integer(1, 5));
  const bool put = g.chance(0.3);
  auto o = put ? PatchNCELossOptions::put(channels, g.integer(1, 3)) : PatchNCELossOptions(channels);
  o.num_patches(g.bad() ? g.pick<int64_t>({1, 0}) : g.integer(2, 6)).nc(g.bad(0.02) ? 0 : g.integer(1, 6));
  o.use_mlp(g.chance(0.7)).l2_eps(g.bad(0.02) ? 0.0 : 1e-7).init_std(g.pick<double>({0.02, 0.0, 1.0}));
  if (!put && g.chance(0.2)) o.info_nce().pruning(Pruning::kHardestPerQuery).hard_negatives(g.integer(1, 3));
  o.info_nce(loss_info_nce(g, o.info_nce()));
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

void graph_nce_case(Gen& g, Case& c) {
  std::vector<int64_t> channels;
  const int64_t layers = g.bad(0.02) ? 0 : g.integer(1, 2);
  for (int64_t l = 0; l < layers; ++l) channels.push_back(g.bad(0.02) ? 0 : g.integer(1, 5));
  auto o = g.chance(0.5) ? GraphNCELossOptions::reference(channels) : GraphNCELossOptions::paper(channels);
  o.num_patches(g.bad() ? 1 : g.integer(2, 8)).nc(g.integer(1, 6)).hops(g.bad() ? -1 : g.integer(0, 2));
  o.pooled_hops(g.integer(0, 2)).pooling_levels(g.integer(0, 2)).down_scale(g.bad() ? 0 : g.integer(1, 4));
  std::vector<double> weights(static_cast<size_t>(o.pooling_levels() + 1), 1.0);
  if (g.bad()) weights.pop_back();
  if (g.bad(0.02)) weights[0] = kNaN;
  o.level_weights(weights);
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

// ---- error kinds ---------------------------------------------------------------------------

/// The documented kinds of error (docs/reliability.md), by a phrase every message of the kind has.
const std::vector<std::pair<std::string, std::vector<std::string>>>& error_kinds() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"nan_or_inf_input", {"contains NaN or Inf"}},
      {"overflow", {"is not finite although the inputs are"}},
      {"undefined", {"undefined tensor"}},
      {"empty", {"is empty"}},
      {"dtype", {"dtype"}},
      {"device", {"same device"}},
      {"index_out_of_range", {"must lie in [0, "}},
      {"too_few_nodes", {"needs at least 2 nodes", "cannot keep k"}},
      {"shape", {"must be [", "must be a square", "same shape", "channels", "feature maps", "patch id tensors",
                 "1-D index tensor"}},
      {"option_value", {"must be >= ", "must be in ", "must be a finite value", "must be finite", "at least one",
                        "needs pooling_levels", "must be Reduction::kMean"}},
  };
  return kinds;
}

const std::vector<std::string>& patchgcl_names() {
  static const std::vector<std::string> names = {
      "l2_normalize", "cosine_adjacency", "normalize_adjacency", "random_patch_ids", "sample_patches", "info_nce",
      "hop_features", "shared_hop_features", "TAGConv", "TopKPool", "PatchNCELoss", "GraphNCELoss"};
  return names;
}

std::string classify(const std::string& message) {
  bool named = false;
  for (const auto& name : patchgcl_names()) named = named || message.rfind(name + ":", 0) == 0 || message.rfind(name + "::", 0) == 0;
  if (!named) return "";
  for (const auto& kind : error_kinds())
    for (const auto& phrase : kind.second)
      if (message.find(phrase) != std::string::npos) return kind.first;
  return "";
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::stoll(value) : fallback;
}

bool all_finite(const torch::Tensor& t) {
  if (!t.defined() || t.device().is_meta()) return true;
  return !t.is_floating_point() || torch::isfinite(t).all().item<bool>();
}

}  // namespace

TEST_CASE("Every public function and module either raises a documented error or returns finite results of the "
          "documented shape with finite gradients, for thousands of random inputs",
          "[properties]") {
  const int64_t cases = env_int("PATCHGCL_PROPERTY_CASES", 10000);
  const auto seed = static_cast<uint32_t>(env_int("PATCHGCL_PROPERTY_SEED", 6));
  torch::manual_seed(seed);
  Gen g{std::mt19937(seed)};
  using Generator = std::function<void(Gen&, Case&)>;
  const std::vector<std::pair<std::string, Generator>> targets = {
      {"l2_normalize", l2_normalize_case},
      {"cosine_adjacency", cosine_adjacency_case},
      {"normalize_adjacency", normalize_adjacency_case},
      {"random_patch_ids", random_patch_ids_case},
      {"sample_patches", sample_patches_case},
      {"info_nce", info_nce_case},
      {"hop_features", [](Gen& g, Case& c) { hop_features_case(g, c, false); }},
      {"shared_hop_features", [](Gen& g, Case& c) { hop_features_case(g, c, true); }},
      {"TAGConv", tag_conv_case},
      {"TopKPool", topk_pool_case},
      {"PatchNCELoss", patch_nce_case},
      {"GraphNCELoss", graph_nce_case},
  };

  std::map<std::string, int64_t> errors_by_kind, runs_by_target, successes_by_target;
  std::vector<std::string> broken;  // rule violations, with the case that broke them
  int64_t successes = 0;
  auto violation = [&](const Case& c, const std::string& rule) {
    if (broken.size() < 20) broken.push_back(rule + " -- " + c.what + c.why);
  };

  for (int64_t i = 0; i < cases; ++i) {
    const auto& target = targets[static_cast<size_t>(i) % targets.size()];
    Case c;
    g.c = &c;
    ++runs_by_target[target.first];
    try {
      target.second(g, c);
    } catch (const c10::Error& e) {
      const std::string message = e.msg();
      const auto kind = classify(message);
      if (kind.empty()) {
        violation(c, "undocumented error '" + message.substr(0, 300) + "'");
        continue;
      }
      ++errors_by_kind[kind];
      if (!c.invalid && !c.nonfinite && !c.risky)
        violation(c, "valid finite input raised '" + message.substr(0, 300) + "'");
      if (kind == "overflow" && !c.risky) violation(c, "overflow error on inputs that cannot overflow");
      continue;
    } catch (const std::exception& e) {
      violation(c, std::string("non-c10 exception: ") + e.what());
      continue;
    }
    ++successes;
    ++successes_by_target[target.first];
    if (c.invalid) violation(c, "an invalid argument was accepted");
    if (c.nonfinite && c.scanned) violation(c, "NaN/Inf input passed the scan");
    for (size_t o = 0; o < c.outputs.size(); ++o) {
      if (c.outputs[o].sizes().vec() != c.shapes[o])
        violation(c, "output " + std::to_string(o) + " has shape " + c10::str(c.outputs[o].sizes()) + ", expected " +
                         c10::str(c10::IntArrayRef(c.shapes[o])));
    }
    const bool must_be_finite = !(c.nonfinite || (c.risky && !c.scanned));
    if (!must_be_finite) continue;
    for (size_t o = 0; o < c.outputs.size(); ++o)
      if (!all_finite(c.outputs[o])) violation(c, "output " + std::to_string(o) + " is not finite");
    if (c.extra) {
      try {
        c.extra();
      } catch (const std::exception& e) {
        violation(c, std::string("property of the result failed: ") + e.what());
      }
    }
    // d(sum_o <w_o, out_o>)/d(leaves), random weights w_o
    torch::Tensor objective;
    for (auto& out : c.outputs) {
      if (!out.requires_grad()) continue;
      auto term = (out.to(torch::kFloat64) * torch::rand(out.sizes(), torch::kFloat64)).sum();
      objective = objective.defined() ? objective + term : term;
    }
    if (!objective.defined() || c.risky || c.half_small) continue;
    objective.backward();
    for (auto& leaf : c.leaves)
      if (leaf.grad().defined() && !all_finite(leaf.grad())) violation(c, "a gradient is not finite");
  }

  std::ostringstream summary;
  int64_t errors = 0;
  for (auto& e : errors_by_kind) errors += e.second;
  summary << "property test: seed " << seed << ", " << cases << " cases, " << successes << " finite results, " << errors
          << " documented errors (";
  bool first = true;
  for (auto& e : errors_by_kind) {
    summary << (first ? "" : ", ") << e.first << " " << e.second;
    first = false;
  }
  summary << "); finite results per target:";
  for (auto& t : runs_by_target) summary << " " << t.first << " " << successes_by_target[t.first] << "/" << t.second;
  std::cout << summary.str() << std::endl;
  WARN(summary.str());

  INFO("first rule violations:\n" << [&] {
    std::string all;
    for (auto& b : broken) all += "  " + b + "\n";
    return all;
  }());
  CHECK(broken.empty());
  CHECK(successes > cases / 3);  // the generator mostly produces usable inputs
}

// ---- the corner cases of docs/reliability.md, one by one ------------------------------------

TEST_CASE("l2_normalize gives unit vectors for magnitudes from 1e-30 to 1e30 and matches the plain formula",
          "[properties]") {
  auto x = torch::randn({5, 16});
  for (double scale : {1e-30, 1e-20, 1.0, 1e20, 1e30}) {
    auto y = F::l2_normalize(x * scale, 1e-35);  // the squares of 1e-30 and 1e30 leave float32
    CHECK(torch::allclose(y.norm(2, -1), torch::ones({5}), 1e-5, 1e-6));
    CHECK(torch::allclose(y, x / x.norm(2, -1, true), 1e-5, 1e-6));
  }
  // within the range where the plain formula is representable, the same bits
  auto plain = x / x.norm(2, -1, true).clamp_min(1e-12);
  CHECK(torch::equal(F::l2_normalize(x), plain));
  // a vector shorter than eps is divided by eps, as torch.nn.functional.normalize does
  auto short_vector = torch::full({1, 4}, 1e-15);
  CHECK(F::l2_normalize(short_vector, 1e-12).max().item<double>() == Approx(1e-3).epsilon(1e-5));
}

TEST_CASE("l2_normalize of a zero vector is zero with zero gradient, in every dtype and eps mode",
          "[properties]") {
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16}) {
    for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
      auto x = torch::zeros({3, 4}, dtype).requires_grad_(true);
      auto y = F::l2_normalize(x, 1e-7, mode);
      CHECK(y.scalar_type() == dtype);
      CHECK(y.abs().max().item<double>() == 0.0);
      (y * torch::ones_like(y)).sum().backward();
      CHECK(x.grad().abs().max().item<double>() == 0.0);
    }
  }
}

TEST_CASE("l2_normalize's fused backward equals the composed formula's, to second order", "[properties]") {
  torch::manual_seed(11);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto base = torch::randn({6, 5}, f64);
  base[1].zero_();           // a zero vector: zero gradient
  base[2].mul_(1e-15);       // shorter than eps: divided by eps (kClamp)
  base[3].mul_(1e200);       // its squares overflow float64
  const auto g = torch::randn({6, 5}, f64), h = torch::randn({6, 5}, f64);
  for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
    auto x = base.clone().requires_grad_(true);
    auto fused = F::l2_normalize(x, 1e-12, mode, FiniteCheck::kNever);
    auto composed = F::detail_normalize::composite(x, 1e-12, mode);
    CHECK(torch::equal(fused, composed));  // the same forward arithmetic
    auto d_fused = torch::autograd::grad({fused}, {x}, {g}, true, true)[0];
    auto d_composed = torch::autograd::grad({composed}, {x}, {g}, true, true)[0];
    CHECK(torch::allclose(d_fused, d_composed, 1e-12, 0));
    CHECK(d_fused[1].abs().max().item<double>() == 0.0);
    // gradients of gradients (create_graph) take the differentiable path
    auto dd_fused = torch::autograd::grad({d_fused}, {x}, {h})[0];
    auto dd_composed = torch::autograd::grad({d_composed}, {x}, {h})[0];
    // (at the zero vector the formula has no second derivative: both give NaN there)
    const auto rows = torch::tensor({0, 2, 3, 4, 5});
    CHECK(torch::allclose(dd_fused.index_select(0, rows), dd_composed.index_select(0, rows), 1e-12, 0));
  }
  // and against central differences on ordinary vectors
  auto w = torch::randn({4, 3}, f64);
  for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
    auto x = torch::randn({4, 3}, f64).requires_grad_(true);
    const double error = patchgcl_test::gradient_error([&] { return (F::l2_normalize(x, 1e-7, mode) * w).sum(); }, x);
    CHECK(error < 1e-8);
  }
}

TEST_CASE("sample_patches names the valid range of patch ids it was given outside of", "[properties]") {
  auto map = torch::randn({1, 2, 3, 4});
  CHECK_THROWS_WITH(F::sample_patches(map, torch::tensor({0, 12})),
                    Catch::Contains("patch_ids") && Catch::Contains("[0, 12)") && Catch::Contains("[0, 12]"));
  CHECK_THROWS_WITH(F::sample_patches(map, torch::tensor({-1, 3})), Catch::Contains("[-1, 3]"));
  CHECK(F::sample_patches(map, torch::tensor({11, 11, 0})).sizes() == torch::IntArrayRef({1, 3, 2}));
  auto nan_map = map.clone();
  nan_map[0][1][2][3] = kNaN;  // location 11
  CHECK_NOTHROW(F::sample_patches(nan_map, torch::tensor({0, 1})));
  CHECK_THROWS_WITH(F::sample_patches(nan_map, torch::tensor({0, 11})), Catch::Contains("NaN or Inf"));
}

TEST_CASE("info_nce reports similarities that overflow instead of returning NaN", "[properties]") {
  auto u = F::l2_normalize(torch::randn({6, 4}));
  CHECK_THROWS_WITH(F::info_nce(u, u, InfoNCEOptions().temperature(1e-300)),
                    Catch::Contains("temperature") && Catch::Contains("Float"));
  auto q = torch::randn({6, 4}) * 1e20f;
  CHECK_THROWS_WITH(F::info_nce(q, q), Catch::Contains("not finite although the inputs are"));
  CHECK_NOTHROW(F::info_nce(q, q, InfoNCEOptions().check_finite(FiniteCheck::kNever)));
  CHECK(std::isfinite(F::info_nce(F::l2_normalize(q), F::l2_normalize(q)).item<double>()));
}

TEST_CASE("The composed losses stay finite for features of magnitude 1e30 and 1e-30", "[properties]") {
  torch::manual_seed(3);
  PatchNCELoss nce(PatchNCELossOptions({3}).num_patches(8).nc(8));
  GraphNCELoss gcl(GraphNCELossOptions({3}).num_patches(8).nc(8));
  for (double scale : {1e30, 1e-30}) {
    auto out = (torch::randn({1, 3, 4, 4}) * scale).requires_grad_(true);
    auto in = torch::randn({1, 3, 4, 4}) * scale;
    auto ids = std::vector<torch::Tensor>{torch::arange(8)};
    for (auto loss : {nce->forward({out}, {in}, ids), gcl->forward({out}, {in}, ids)}) {
      CHECK(std::isfinite(loss.item<double>()));
      out.mutable_grad() = torch::Tensor();
      loss.backward();
      CHECK(torch::isfinite(out.grad()).all().item<bool>());
    }
  }
}

TEST_CASE("The composed losses reject per-anchor reduction, whose shapes differ across layers and levels",
          "[properties]") {
  auto o = InfoNCEOptions().reduction(Reduction::kNone);
  CHECK_THROWS_WITH(PatchNCELoss(PatchNCELossOptions({3}).info_nce(o)), Catch::Contains("Reduction::kMean"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({3}).info_nce(o)), Catch::Contains("Reduction::kMean"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({3}).l2_eps(0.0)), Catch::Contains("l2_eps"));
}

TEST_CASE("hop_features validates its inputs and computes half precision in float32", "[properties]") {
  auto x = torch::randn({5, 3});
  auto abar = F::normalize_adjacency(torch::ones({5, 5}));
  CHECK_THROWS_WITH(F::hop_features(x, abar, -1), Catch::Contains("hops") && Catch::Contains(">= 0"));
  CHECK_THROWS_WITH(F::hop_features(x, abar.narrow(0, 0, 4).narrow(1, 0, 4), 1),
                    Catch::Contains("abar") && Catch::Contains("[4, 4]"));
  CHECK_THROWS_WITH(F::hop_features(x, abar.to(torch::kFloat64), 1), Catch::Contains("same dtype"));
  auto half = F::hop_features(x.to(torch::kHalf), abar.to(torch::kHalf), 2);
  CHECK(half.scalar_type() == torch::kHalf);
  CHECK(torch::allclose(half.to(torch::kFloat32), F::hop_features(x, abar, 2), 1e-2, 1e-2));
}

TEST_CASE("TopKPool with tied scores keeps k distinct nodes and PyG's scores of a zero p are 0, not NaN",
          "[properties]") {
  TopKPool pool(TopKPoolOptions(3).k(3).init_std(0.0).divide_by_norm(true).activation(ScoreActivation::kTanh));
  auto z = torch::ones({6, 3});
  auto out = pool(z, z, torch::ones({6, 6}));
  CHECK(distinct(out.indices));
  CHECK(torch::isfinite(out.scores).all().item<bool>());
}

TEST_CASE("patchgcl::set_num_threads sizes LibTorch's pool and OpenBLAS's where OpenBLAS is loaded", "[properties]") {
  const int before = at::get_num_threads();
  // Where the process has mapped an OpenBLAS (Linux: /proc/self/maps), it must be found and told.
  bool openblas_mapped = false;
  if (std::ifstream maps("/proc/self/maps"); maps) {
    for (std::string line; std::getline(maps, line);) openblas_mapped |= line.find("openblas") != std::string::npos;
  }
  const bool told = patchgcl::set_num_threads(2);
  if (openblas_mapped) CHECK(told);
  CHECK(at::get_num_threads() == 2);
  // Loaded iff its symbols resolve; then it must report what it was told.
  CHECK(told == (patchgcl::blas_num_threads() != -1));
  if (told) CHECK(patchgcl::blas_num_threads() == 2);
  patchgcl::set_num_threads(1);
  CHECK(at::get_num_threads() == 1);
  if (told) CHECK(patchgcl::blas_num_threads() == 1);
  CHECK_THROWS_WITH(patchgcl::set_num_threads(0), Catch::Contains("patchgcl::set_num_threads: threads must be >= 1, got 0"));
  patchgcl::set_num_threads(before);
}
