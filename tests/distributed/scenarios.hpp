#pragma once

// Losses computed two ways for the equivalence tests: by one process on the whole batch with
// minibatch-wide negatives (`gather == nullptr`), or by rank r of `world` processes on its
// slice of the batch with negatives from every process (`gather` set).

#include <patchgcl/functional/global_info_nce.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/patchgcl.hpp>

#include <memory>
#include <string>
#include <vector>

namespace patchgcl_test {

struct LossResult {
  torch::Tensor loss;                      ///< 0-dim
  torch::Tensor input_grad;                ///< d loss / d (this process's slice of the output features)
  std::vector<torch::Tensor> param_grads;  ///< d loss / d parameters, in named_parameters() order
};

inline const std::vector<std::string>& scenarios() {
  static const std::vector<std::string> s{"info_nce_rows", "info_nce_cols", "info_nce_both", "patch_nce", "graph_nce"};
  return s;
}

inline patchgcl::Direction scenario_direction(const std::string& s) {
  if (s == "info_nce_rows") return patchgcl::Direction::kOutputToInput;
  if (s == "info_nce_cols") return patchgcl::Direction::kInputToOutput;
  return patchgcl::Direction::kBoth;
}

/// The losses: feature maps `[world * 2, C, 8, 8]` of two layers, 16 fixed locations, negatives
/// from the whole (global) batch; the loss's heads are the parameters.
inline LossResult run_loss_scenario(const std::string& name, int64_t world, int64_t rank,
                                    const std::shared_ptr<patchgcl::KeyAllGather>& gather) {
  constexpr int64_t B = 2;
  const std::vector<int64_t> channels{4, 6};
  torch::manual_seed(777);
  std::vector<torch::Tensor> outputs, inputs, ids;
  for (auto c : channels) {
    outputs.push_back(torch::randn({world * B, c, 8, 8}));
    inputs.push_back(torch::randn({world * B, c, 8, 8}));
    ids.push_back(torch::randperm(64, torch::kInt64).narrow(0, 0, 16));
  }
  if (gather) {
    for (auto& t : outputs) t = t.narrow(0, rank * B, B);
    for (auto& t : inputs) t = t.narrow(0, rank * B, B);
  }
  for (auto& t : outputs) t = t.clone().requires_grad_(true);
  torch::manual_seed(99);
  std::shared_ptr<torch::nn::Module> module;
  torch::Tensor loss;
  if (name == "patch_nce") {
    auto o = patchgcl::PatchNCELossOptions(channels).num_patches(16).nc(8).negatives_from_all_processes(gather);
    o.info_nce().negatives(patchgcl::Negatives::kWholeBatch);
    patchgcl::PatchNCELoss m(o);
    module = m.ptr();
    loss = m->forward(outputs, inputs, ids);
  } else {
    auto o = patchgcl::GraphNCELossOptions(channels).num_patches(16).nc(8).negatives_from_all_processes(gather);
    o.info_nce().negatives(patchgcl::Negatives::kWholeBatch);
    patchgcl::GraphNCELoss m(o);
    module = m.ptr();
    loss = m->forward(outputs, inputs, ids);
  }
  loss.backward();
  LossResult r;
  r.loss = loss;
  std::vector<torch::Tensor> grads;
  for (auto& t : outputs) grads.push_back(t.grad().reshape({t.size(0), -1}));
  r.input_grad = torch::cat(grads, 1);
  for (auto& p : module->parameters()) r.param_grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
  return r;
}

/// Per-process batch 2, N = 16 nodes, C = 8 features through a Linear(8, 6) head + L2 (the
/// parameters), the whole batch `[world * 2, 16, 8]` drawn from one seed on every process.
inline LossResult run_scenario(const std::string& name, int64_t world, int64_t rank,
                               const std::shared_ptr<patchgcl::KeyAllGather>& gather) {
  if (name == "patch_nce" || name == "graph_nce") return run_loss_scenario(name, world, rank, gather);
  constexpr int64_t B = 2, N = 16, C = 8;
  torch::manual_seed(20240);
  auto output = torch::randn({world * B, N, C});
  auto input = torch::randn({world * B, N, C});
  torch::nn::Linear head(C, 6);
  if (gather) {
    output = output.narrow(0, rank * B, B);
    input = input.narrow(0, rank * B, B);
  }
  output = output.clone().requires_grad_(true);
  const auto unit = [](const torch::Tensor& x) {
    return patchgcl::functional::l2_normalize(x, 1e-12, patchgcl::functional::L2Eps::kClamp);
  };
  auto v = unit(head(output));
  torch::Tensor z;
  {
    torch::NoGradGuard no_grad;
    z = unit(head(input));
  }
  auto options =
      patchgcl::InfoNCEOptions().negatives(patchgcl::Negatives::kWholeBatch).direction(scenario_direction(name));
  LossResult r;
  r.loss = gather ? patchgcl::functional::global_info_nce(v, z, *gather, options)
                  : patchgcl::functional::info_nce(v, z, options);
  r.loss.backward();
  r.input_grad = output.grad();
  for (auto& p : head->parameters()) r.param_grads.push_back(p.grad());
  return r;
}

}  // namespace patchgcl_test
