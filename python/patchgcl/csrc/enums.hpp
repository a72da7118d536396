#pragma once
// The C++ option enums by the names the Python side uses: the enumerator without its `k`, in
// snake case (Comparison::kGreaterEqual is "greater_equal").
#include <patchgcl/patchgcl.hpp>

#include <string>
#include <utility>
#include <vector>

namespace patchgcl_python {

template <typename E>
using Names = std::vector<std::pair<const char*, E>>;

inline const Names<patchgcl::FiniteCheck>& finite_check_names() {
  using E = patchgcl::FiniteCheck;
  static const Names<E> n{{"auto", E::kAuto}, {"always", E::kAlways}, {"never", E::kNever}};
  return n;
}
inline const Names<patchgcl::Comparison>& comparison_names() {
  using E = patchgcl::Comparison;
  static const Names<E> n{{"greater_equal", E::kGreaterEqual}, {"greater", E::kGreater}};
  return n;
}
inline const Names<patchgcl::Diagonal>& diagonal_names() {
  using E = patchgcl::Diagonal;
  static const Names<E> n{{"as_computed", E::kAsComputed}, {"zero", E::kZero}, {"one", E::kOne}};
  return n;
}
inline const Names<patchgcl::SelfLoops>& self_loops_names() {
  using E = patchgcl::SelfLoops;
  static const Names<E> n{{"none", E::kNone}, {"one", E::kOne}, {"double", E::kDouble}};
  return n;
}
inline const Names<patchgcl::Normalization>& normalization_names() {
  using E = patchgcl::Normalization;
  static const Names<E> n{{"symmetric", E::kSymmetric}, {"random_walk", E::kRandomWalk}};
  return n;
}
inline const Names<patchgcl::Direction>& direction_names() {
  using E = patchgcl::Direction;
  static const Names<E> n{
      {"output_to_input", E::kOutputToInput}, {"input_to_output", E::kInputToOutput}, {"both", E::kBoth}};
  return n;
}
inline const Names<patchgcl::Negatives>& negatives_names() {
  using E = patchgcl::Negatives;
  static const Names<E> n{{"same_image", E::kSameImage}, {"whole_batch", E::kWholeBatch}};
  return n;
}
inline const Names<patchgcl::Pruning>& pruning_names() {
  using E = patchgcl::Pruning;
  static const Names<E> n{{"none", E::kNone},
                          {"hardest_per_anchor", E::kHardestPerAnchor},
                          {"reference_column_sort", E::kReferenceColumnSort}};
  return n;
}
inline const Names<patchgcl::Reduction>& reduction_names() {
  using E = patchgcl::Reduction;
  static const Names<E> n{{"none", E::kNone}, {"mean", E::kMean}};
  return n;
}
inline const Names<patchgcl::ScoreActivation>& score_activation_names() {
  using E = patchgcl::ScoreActivation;
  static const Names<E> n{{"sigmoid", E::kSigmoid}, {"tanh", E::kTanh}};
  return n;
}
inline const Names<patchgcl::PooledAdjacency>& pooled_adjacency_names() {
  using E = patchgcl::PooledAdjacency;
  static const Names<E> n{{"induced", E::kInduced}, {"two_hop", E::kTwoHop}};
  return n;
}
inline const Names<patchgcl::functional::L2Eps>& l2_eps_names() {
  using E = patchgcl::functional::L2Eps;
  static const Names<E> n{{"clamp", E::kClamp}, {"add", E::kAdd}};
  return n;
}

/// The enumerator named `value`; otherwise an error naming `fn`, the argument (`what` + `arg`:
/// "option `info_nce.pruning`" for a loss option), the names known and `value`.
template <typename E>
E by_name(const Names<E>& names, const std::string& value, const char* fn, const char* arg, const char* what = "") {
  std::string known;
  for (const auto& n : names) {
    if (value == n.first) return n.second;
    known += known.empty() ? n.first : std::string(", ") + n.first;
  }
  TORCH_CHECK(false, fn, ": ", what, "`", arg, "` must be one of ", known, ", got '", value, "'");
}

}  // namespace patchgcl_python
