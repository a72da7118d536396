#pragma once
// GraphNCELossOptions / PatchNCELossOptions from an OptionSpec: the preset first
// (`preset=reference|paper|put`), then every option given, by its C++ name.
#include "enums.hpp"
#include "option_spec.hpp"

#include <string>

namespace patchgcl_python {

inline void read_info_nce(OptionSpec& s, patchgcl::InfoNCEOptions& o, const std::string& prefix) {
  auto real = [&](const std::string& k) { return s.real(k); };
  auto integer = [&](const std::string& k) { return s.integer(k); };
  s.maybe(prefix + "temperature", real, [&](double v) { o.temperature(v); });
  s.maybe(prefix + "diagonal_value", real, [&](double v) { o.diagonal_value(v); });
  s.maybe(prefix + "hard_negatives", integer, [&](int64_t v) { o.hard_negatives(v); });
  auto k = prefix + "direction";
  if (s.has(k)) o.direction(s.choice(k, direction_names()));
  if (s.has(k = prefix + "negatives")) o.negatives(s.choice(k, negatives_names()));
  if (s.has(k = prefix + "pruning")) o.pruning(s.choice(k, pruning_names()));
  if (s.has(k = prefix + "reduction")) o.reduction(s.choice(k, reduction_names()));
  if (s.has(k = prefix + "check_finite")) o.check_finite(s.choice(k, finite_check_names()));
}

/// The fields of MultiLayerLossOptions, for either loss.
template <typename Options>
void read_multi_layer(OptionSpec& s, Options& o) {
  auto real = [&](const std::string& k) { return s.real(k); };
  auto integer = [&](const std::string& k) { return s.integer(k); };
  s.maybe("num_patches", integer, [&](int64_t v) { o.num_patches(v); });
  s.maybe("nc", integer, [&](int64_t v) { o.nc(v); });
  s.maybe("l2_eps", real, [&](double v) { o.l2_eps(v); });
  s.maybe("init_std", real, [&](double v) { o.init_std(v); });
  if (s.has("check_finite")) o.check_finite(s.choice("check_finite", finite_check_names()));
  read_info_nce(s, o.info_nce(), "info_nce.");
}

inline patchgcl::GraphNCELossOptions graph_nce_options(const std::string& spec) {
  OptionSpec s(spec, "GraphNCELoss");
  const auto preset = s.has("preset") ? s.text("preset") : std::string("reference");
  TORCH_CHECK(preset == "reference" || preset == "paper", "GraphNCELoss: `preset` must be reference or paper, got '",
              preset, "'");
  auto in_channels = s.integers("in_channels");
  auto o = preset == "paper" ? patchgcl::GraphNCELossOptions::paper(in_channels)
                             : patchgcl::GraphNCELossOptions::reference(in_channels);
  read_multi_layer(s, o);
  auto real = [&](const std::string& k) { return s.real(k); };
  auto integer = [&](const std::string& k) { return s.integer(k); };
  auto boolean = [&](const std::string& k) { return s.boolean(k); };
  s.maybe("adjacency.threshold", real, [&](double v) { o.adjacency().threshold(v); });
  s.maybe("adjacency.eps", real, [&](double v) { o.adjacency().eps(v); });
  s.maybe("adjacency.normalize", boolean, [&](bool v) { o.adjacency().normalize(v); });
  if (s.has("adjacency.comparison")) o.adjacency().comparison(s.choice("adjacency.comparison", comparison_names()));
  if (s.has("adjacency.diagonal")) o.adjacency().diagonal(s.choice("adjacency.diagonal", diagonal_names()));
  if (s.has("adjacency.check_finite"))
    o.adjacency().check_finite(s.choice("adjacency.check_finite", finite_check_names()));
  if (s.has("normalize.normalization"))
    o.normalize().normalization(s.choice("normalize.normalization", normalization_names()));
  if (s.has("normalize.self_loops")) o.normalize().self_loops(s.choice("normalize.self_loops", self_loops_names()));
  if (s.has("normalize.check_finite"))
    o.normalize().check_finite(s.choice("normalize.check_finite", finite_check_names()));
  s.maybe("hops", integer, [&](int64_t v) { o.hops(v); });
  s.maybe("conv_bias", boolean, [&](bool v) { o.conv_bias(v); });
  s.maybe("pooling_levels", integer, [&](int64_t v) { o.pooling_levels(v); });
  s.maybe("down_scale", integer, [&](int64_t v) { o.down_scale(v); });
  s.maybe("pooled_hops", integer, [&](int64_t v) { o.pooled_hops(v); });
  s.maybe(
      "level_weights", [&](const std::string& k) { return s.reals(k); },
      [&](std::vector<double> v) { o.level_weights(v); });
  s.maybe("average_levels", boolean, [&](bool v) { o.average_levels(v); });
  if (s.has("score_activation")) o.score_activation(s.choice("score_activation", score_activation_names()));
  s.maybe("score_bias", boolean, [&](bool v) { o.score_bias(v); });
  if (s.has("pooled_adjacency")) o.pooled_adjacency(s.choice("pooled_adjacency", pooled_adjacency_names()));
  s.check_all_used();
  return o;
}

inline patchgcl::PatchNCELossOptions patch_nce_options(const std::string& spec) {
  OptionSpec s(spec, "PatchNCELoss");
  const auto preset = s.has("preset") ? s.text("preset") : std::string("reference");
  TORCH_CHECK(preset == "reference" || preset == "put", "PatchNCELoss: `preset` must be reference or put, got '",
              preset, "'");
  auto in_channels = s.integers("in_channels");
  auto o =
      preset == "put" ? patchgcl::PatchNCELossOptions::put(in_channels) : patchgcl::PatchNCELossOptions(in_channels);
  read_multi_layer(s, o);
  s.maybe(
      "use_mlp", [&](const std::string& k) { return s.boolean(k); }, [&](bool v) { o.use_mlp(v); });
  s.check_all_used();
  return o;
}

}  // namespace patchgcl_python
