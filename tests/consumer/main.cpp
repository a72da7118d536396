#include <patchgcl/patchgcl.hpp>

#include <iostream>

int main() {
  torch::manual_seed(0);
  patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions({8}).num_patches(16).nc(8));
  auto out = torch::randn({1, 8, 8, 8}, torch::requires_grad());
  auto value = loss(std::vector<torch::Tensor>{out}, std::vector<torch::Tensor>{torch::randn({1, 8, 8, 8})});
  value.backward();
  const bool ok = std::isfinite(value.item<double>()) && out.grad().defined();
  std::cout << "patchgcl " << PATCHGCL_VERSION_STRING << " consumer: loss " << value.item<double>() << "\n";
  return ok ? 0 : 1;
}
