// libFuzzer target: the example trainer's VGG16 weight reader (examples/trainer/nets/vgg16_weights.hpp),
// what `--vgg-weights FILE` reads: the safetensors parser, then each tensor's name, dtype and shape
// against torchvision's VGG16 table, the copy of the needed convolutions and their finiteness check.
//
// The first input byte % 14 is how many convolutions the reader needs (0 .. 13; the trainer needs 10,
// whose 30 MB no mutation reaches, so the small counts exercise the complete path), the rest the file.
// An accepted file must give exactly the needed tensors, float32, with the table's shapes, finite; a
// refusal must be a std::runtime_error naming the file. Anything else (another exception, a crash, a
// sanitizer report, a leak) is a finding. PATCHGCL_FUZZ_WRITE_SEEDS=DIR writes the seed corpus
// (fuzz/corpus/trainer_vgg16_weights/) and exits.
#define FMT_HEADER_ONLY  // fmt without its library: the fuzz build links LibTorch only
#include "trainer/nets/vgg16_weights.hpp"

#include "tensor_bytes_check.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace {

using namespace trainer;
using fuzz_check::require;

void write_seed(const std::string& path, int convs_needed, const std::map<std::string, torch::Tensor>& tensors) {
  std::ofstream(path, std::ios::binary) << static_cast<char>(convs_needed)
                                        << patchgcl::io::safetensors_bytes(tensors, {{"source", "seed"}});
}

/// The seeds: conv1_1 alone (accepted for 1 convolution), conv1_1 and conv1_2 (accepted for 2), and files the
/// reader refuses: a float64 bias, a name that is none of VGG16's, a missing conv1_2.
void write_seeds(const std::string& dir) {
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> conv1_1{{"features.0.weight", torch::randn({64, 3, 3, 3})},
                                               {"features.0.bias", torch::randn({64})}};
  write_seed(dir + "/seed-conv1_1", 1, conv1_1);
  auto conv1 = conv1_1;
  conv1["features.2.weight"] = torch::randn({64, 64, 3, 3});
  conv1["features.2.bias"] = torch::randn({64});
  write_seed(dir + "/seed-conv1", 2, conv1);
  auto f64 = conv1_1;
  f64["features.0.bias"] = f64.at("features.0.bias").to(torch::kFloat64);
  write_seed(dir + "/seed-refused-float64", 1, f64);
  auto unknown = conv1_1;
  unknown["classifier.0.bias"] = torch::zeros({4});
  write_seed(dir + "/seed-refused-unknown-name", 1, unknown);
  write_seed(dir + "/seed-refused-missing-conv1_2", 2, conv1_1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  if (const char* dir = std::getenv("PATCHGCL_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t needed = data[0] % 14;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto tensors = parse_vgg16_weights(bytes, "fuzz", needed);
    require(tensors.size() == 2 * needed);
    for (size_t i = 0; i < needed; ++i) {
      const auto& c = vgg16_convs()[i];
      const auto& w = tensors.at("features." + std::to_string(c.index) + ".weight");
      const auto& b = tensors.at("features." + std::to_string(c.index) + ".bias");
      require(w.scalar_type() == torch::kFloat32 && w.sizes() == torch::IntArrayRef({c.out, c.in, 3, 3}));
      require(b.scalar_type() == torch::kFloat32 && b.sizes() == torch::IntArrayRef({c.out}));
      require(torch::isfinite(w).all().item<bool>() && torch::isfinite(b).all().item<bool>());
    }
  } catch (const std::runtime_error& e) {
    require(std::string(e.what()).find("VGG16 weight file 'fuzz'") != std::string::npos);
  }
  return 0;
}
