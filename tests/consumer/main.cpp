#include <patchgcl/patchgcl.hpp>
#ifdef CONSUMER_SAFETENSORS
#include <patchgcl/io/safetensors.hpp>
#endif

#include <iostream>

int main() {
  torch::manual_seed(0);
  patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions({8}).num_patches(16).nc(8));
  auto out = torch::randn({1, 8, 8, 8}, torch::requires_grad());
  auto value = loss(std::vector<torch::Tensor>{out}, std::vector<torch::Tensor>{torch::randn({1, 8, 8, 8})});
  value.backward();
  bool ok = std::isfinite(value.item<double>()) && out.grad().defined();
#ifdef CONSUMER_SAFETENSORS
  // The weights through a safetensors file's bytes and back.
  std::map<std::string, torch::Tensor> weights;
  for (const auto& p : loss->named_parameters()) weights[p.key()] = p.value().detach();
  const auto back = patchgcl::io::parse_safetensors(patchgcl::io::safetensors_bytes(weights, {{"k", "v"}}));
  for (const auto& kv : weights) ok = ok && torch::equal(back.at(kv.first), kv.second);
  ok = ok && back.config_string("k") == "v";
  std::cout << "safetensors: " << weights.size() << " tensors read back " << (ok ? "exactly" : "WRONG") << "\n";
#endif
  std::cout << "patchgcl " << PATCHGCL_VERSION_STRING << " consumer: loss " << value.item<double>() << "\n";
  return ok ? 0 : 1;
}
