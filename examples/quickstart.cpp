// The smallest useful program: PatchGCL's graph loss pulls the features of an "output image"
// towards the structure of an "input image". Random feature maps stand in for the VGG16 features
// of x and G(x); the loss's own heads and the output features are optimised together, as a
// generator and the loss heads are in training. Prints the loss every few steps.
#include <patchgcl/patchgcl.hpp>

#include <fmt/format.h>

int main() {
  torch::manual_seed(0);
  const std::vector<int64_t> channels{64, 128};
  patchgcl::GraphNCELoss graph_loss(patchgcl::GraphNCELossOptions::reference(channels).num_patches(64));

  std::vector<torch::Tensor> input_features{torch::randn({2, 64, 16, 16}), torch::randn({2, 128, 8, 8})};
  std::vector<torch::Tensor> output_features;
  for (const auto& f : input_features) output_features.push_back(torch::randn_like(f).requires_grad_());

  auto params = graph_loss->parameters();
  params.insert(params.end(), output_features.begin(), output_features.end());
  torch::optim::Adam adam(params, torch::optim::AdamOptions(2e-3).betas({0.5, 0.999}));

  for (int step = 0; step <= 100; ++step) {
    adam.zero_grad();
    auto loss = graph_loss(output_features, input_features);
    loss.backward();
    adam.step();
    if (step % 20 == 0) fmt::print("step {:3}  graph loss {:.4f}\n", step, loss.item<double>());
  }
  return 0;
}
