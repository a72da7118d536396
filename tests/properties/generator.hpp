#pragma once

// The random-input generator of the property test (tests/test_properties.cpp): what one case
// did (`Case`) and the random shapes, dtypes, values and options (`Gen`).

#include <patchgcl/patchgcl.hpp>

#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl_property {

using namespace patchgcl;

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Values { kNormal, kZeros, kConstant, kDuplicated, kTiny, kHuge, kMixed, kNaN, kInf };

inline const char* values_name(Values v) {
  switch (v) {
    case Values::kNormal:
      return "normal";
    case Values::kZeros:
      return "zeros";
    case Values::kConstant:
      return "constant";
    case Values::kDuplicated:
      return "duplicated";
    case Values::kTiny:
      return "tiny";
    case Values::kHuge:
      return "huge";
    case Values::kMixed:
      return "mixed";
    case Values::kNaN:
      return "nan";
    case Values::kInf:
      return "inf";
  }
  return "?";
}

/// Magnitudes per dtype: `huge` and `tiny` are as far out as the dtype allows while the
/// gradient of a normalisation (~1/|x|) and of InfoNCE (~|x| / tau) stays representable.
inline double huge_of(torch::ScalarType t) { return t == torch::kHalf ? 1e3 : t == torch::kFloat64 ? 1e150 : 1e30; }
inline double tiny_of(torch::ScalarType t) { return t == torch::kHalf ? 1e-3 : t == torch::kFloat64 ? 1e-150 : 1e-30; }

/// What one case did, for the rules checked by the harness.
struct Case {
  std::string what;         // description printed when a rule is broken
  std::string why;          // the choices that made it invalid
  bool invalid = false;     // an argument was chosen outside its documented domain
  bool nonfinite = false;   // NaN/Inf in an input
  bool risky = false;       // huge values where the documented result may be an overflow error
  bool scanned = true;      // the NaN/Inf scan is active
  bool half_small = false;  // half-precision zeros/tiny values: see Gen::tensor
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
  T pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(integer(0, static_cast<int64_t>(v.size()) - 1))];
  }
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
    Values v = r < 40   ? Values::kNormal
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
      case Values::kNormal:
        break;
      case Values::kZeros:
        x.zero_();
        break;
      case Values::kConstant:
        x.fill_(real(-2.0, 2.0));
        break;
      case Values::kDuplicated:
        if (x.dim() >= 2 && x.size(-2) > 0) x = x.narrow(-2, 0, 1).expand_as(x).clone();
        break;
      case Values::kTiny:
        x.mul_(tiny_of(dtype));
        break;
      case Values::kHuge:
        x.mul_(huge_of(dtype));
        break;
      case Values::kMixed:
        if (x.dim() >= 1) {
          auto scale_shape = shape;
          scale_shape.back() = 1;
          auto pickers = torch::randint(0, 4, scale_shape, torch::kLong);
          auto scale =
              torch::where(pickers.eq(0), torch::zeros({}, torch::kFloat64),
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
    auto a = r == 0   ? torch::zeros(shape)
             : r == 1 ? torch::ones(shape)
                      : torch::rand(shape).lt(0.4).to(torch::kFloat32);
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
inline void ensure(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

/// True when the 1-D `t` has no repeated value.
inline bool distinct(const torch::Tensor& t) {
  auto s = std::get<0>(t.sort());
  return t.numel() < 2 || (s.narrow(0, 1, t.numel() - 1) > s.narrow(0, 0, t.numel() - 1)).all().item<bool>();
}

inline torch::ScalarType computed_dtype(torch::ScalarType t) {
  return t == torch::kHalf || t == torch::kBFloat16 ? torch::kFloat32 : t;
}

inline std::vector<int64_t> with_last(std::vector<int64_t> s, int64_t last) {
  s.back() = last;
  return s;
}
}  // namespace patchgcl_property
