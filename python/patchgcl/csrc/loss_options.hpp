#pragma once
// The options of GraphNCELoss and PatchNCELoss, by their C++ names, as OptionTables: the one list
// of what the Python modules accept (their keywords, nested structs as dicts flattened to dotted
// names). A preset gives the starting values (reference, paper, put); each option given replaces
// its field.
#include "enums.hpp"
#include "option_table.hpp"

#include <string>
#include <vector>

namespace patchgcl_python {

/// The fields of MultiLayerLossOptions (both losses), InfoNCEOptions under "info_nce." included.
template <typename O>
void add_multi_layer(OptionTable<O>& t) {
  t.add(
       "num_patches", +[](O & o) -> auto& { return o.num_patches(); })
      .add(
          "nc", +[](O & o) -> auto& { return o.nc(); })
      .add(
          "l2_eps", +[](O & o) -> auto& { return o.l2_eps(); })
      .add(
          "init_std", +[](O & o) -> auto& { return o.init_std(); })
      .add(
          "check_finite", +[](O & o) -> auto& { return o.check_finite(); }, finite_check_names())
      .add(
          "info_nce.temperature", +[](O & o) -> auto& { return o.info_nce().temperature(); })
      .add(
          "info_nce.diagonal_value", +[](O & o) -> auto& { return o.info_nce().diagonal_value(); })
      .add(
          "info_nce.direction", +[](O & o) -> auto& { return o.info_nce().direction(); }, direction_names())
      .add(
          "info_nce.negatives", +[](O & o) -> auto& { return o.info_nce().negatives(); }, negatives_names())
      .add(
          "info_nce.pruning", +[](O & o) -> auto& { return o.info_nce().pruning(); }, pruning_names())
      .add(
          "info_nce.hard_negatives", +[](O & o) -> auto& { return o.info_nce().hard_negatives(); })
      .add(
          "info_nce.reduction", +[](O & o) -> auto& { return o.info_nce().reduction(); }, reduction_names())
      .add(
          "info_nce.check_finite", +[](O & o) -> auto& { return o.info_nce().check_finite(); }, finite_check_names());
}

inline const OptionTable<patchgcl::GraphNCELossOptions>& graph_nce_table() {
  using O = patchgcl::GraphNCELossOptions;
  static const auto table = [] {
    OptionTable<O> t("GraphNCELoss");
    add_multi_layer(t);
    t.add(
         "adjacency.threshold", +[](O & o) -> auto& { return o.adjacency().threshold(); })
        .add(
            "adjacency.comparison", +[](O & o) -> auto& { return o.adjacency().comparison(); }, comparison_names())
        .add(
            "adjacency.diagonal", +[](O & o) -> auto& { return o.adjacency().diagonal(); }, diagonal_names())
        .add(
            "adjacency.eps", +[](O & o) -> auto& { return o.adjacency().eps(); })
        .add(
            "adjacency.normalize", +[](O & o) -> auto& { return o.adjacency().normalize(); })
        .add(
            "adjacency.check_finite", +[](O & o) -> auto& { return o.adjacency().check_finite(); },
            finite_check_names())
        .add(
            "normalize.normalization", +[](O & o) -> auto& { return o.normalize().normalization(); },
            normalization_names())
        .add(
            "normalize.self_loops", +[](O & o) -> auto& { return o.normalize().self_loops(); }, self_loops_names())
        .add(
            "normalize.check_finite", +[](O & o) -> auto& { return o.normalize().check_finite(); },
            finite_check_names())
        .add(
            "hops", +[](O & o) -> auto& { return o.hops(); })
        .add(
            "conv_bias", +[](O & o) -> auto& { return o.conv_bias(); })
        .add(
            "pooling_levels", +[](O & o) -> auto& { return o.pooling_levels(); })
        .add(
            "down_scale", +[](O & o) -> auto& { return o.down_scale(); })
        .add(
            "pooled_hops", +[](O & o) -> auto& { return o.pooled_hops(); })
        .add(
            "level_weights", +[](O & o) -> auto& { return o.level_weights(); })
        .add(
            "average_levels", +[](O & o) -> auto& { return o.average_levels(); })
        .add(
            "score_activation", +[](O & o) -> auto& { return o.score_activation(); }, score_activation_names())
        .add(
            "score_bias", +[](O & o) -> auto& { return o.score_bias(); })
        .add(
            "pooled_adjacency", +[](O & o) -> auto& { return o.pooled_adjacency(); }, pooled_adjacency_names());
    return t;
  }();
  return table;
}

inline const OptionTable<patchgcl::PatchNCELossOptions>& patch_nce_table() {
  using O = patchgcl::PatchNCELossOptions;
  static const auto table = [] {
    OptionTable<O> t("PatchNCELoss");
    add_multi_layer(t);
    t.add(
        "use_mlp", +[](O & o) -> auto& { return o.use_mlp(); });
    return t;
  }();
  return table;
}

/// A preset's options: GraphNCELoss's reference (the released code) or paper (the text).
inline patchgcl::GraphNCELossOptions graph_nce_preset(const std::string& preset, std::vector<int64_t> in_channels) {
  TORCH_CHECK(preset == "reference" || preset == "paper", "GraphNCELoss: `preset` must be reference or paper, got '",
              preset, "'");
  return preset == "paper" ? patchgcl::GraphNCELossOptions::paper(std::move(in_channels))
                           : patchgcl::GraphNCELossOptions::reference(std::move(in_channels));
}

/// PatchNCELoss's reference (CUT) or put (PUT's pruning).
inline patchgcl::PatchNCELossOptions patch_nce_preset(const std::string& preset, std::vector<int64_t> in_channels) {
  TORCH_CHECK(preset == "reference" || preset == "put", "PatchNCELoss: `preset` must be reference or put, got '",
              preset, "'");
  return preset == "put" ? patchgcl::PatchNCELossOptions::put(std::move(in_channels))
                         : patchgcl::PatchNCELossOptions(std::move(in_channels));
}

}  // namespace patchgcl_python
