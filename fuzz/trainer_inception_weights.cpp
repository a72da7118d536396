// libFuzzer target: the example trainer's FID Inception weight reader (examples/trainer/nets/inception_weights.hpp),
// what `evaluate --features FILE` reads: the safetensors parser, then each tensor's name, dtype and shape
// against the FID Inception's table, the copy of the needed convolutions, their finiteness and variance checks.
//
// The first input byte % 95 is how many convolutions the reader needs (0 .. 94; the network needs 94,
// whose 95 MB no mutation reaches, so the small counts exercise the complete path), the rest the file.
// An accepted file must give exactly the needed tensors, float32, with the table's shapes, finite, every
// running_var >= 0; a refusal must be a std::runtime_error naming the file. Anything else (another
// exception, a crash, a sanitizer report, a leak) is a finding. PATCHGCL_FUZZ_WRITE_SEEDS=DIR writes the
// seed corpus (fuzz/corpus/trainer_inception_weights/) and exits.
#define FMT_HEADER_ONLY  // fmt without its library: the fuzz build links LibTorch only
#include "trainer/nets/inception_weights.hpp"

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

/// The four tensors of convolution `i` of inception_convs(), random, with a positive variance.
void add_conv(std::map<std::string, torch::Tensor>& tensors, size_t i) {
  const auto& c = inception_convs()[i];
  tensors[c.name + ".conv.weight"] = torch::randn({c.out, c.in, c.kh, c.kw});
  tensors[c.name + ".bn.bias"] = torch::randn({c.out});
  tensors[c.name + ".bn.running_mean"] = torch::randn({c.out});
  tensors[c.name + ".bn.running_var"] = torch::rand({c.out});
}

/// The seeds: Conv2d_1a_3x3 alone (accepted for 1 convolution), the first two (accepted for 2), and files
/// the reader refuses: a float64 bias, a name that is none of the network's, a missing Conv2d_2a_3x3, a
/// negative variance.
void write_seeds(const std::string& dir) {
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> first;
  add_conv(first, 0);
  write_seed(dir + "/seed-conv1a", 1, first);
  auto two = first;
  add_conv(two, 1);
  write_seed(dir + "/seed-conv2a", 2, two);
  auto f64 = first;
  f64["Conv2d_1a_3x3.bn.bias"] = f64.at("Conv2d_1a_3x3.bn.bias").to(torch::kFloat64);
  write_seed(dir + "/seed-refused-float64", 1, f64);
  auto unknown = first;
  unknown["fc.bias"] = torch::zeros({4});
  write_seed(dir + "/seed-refused-unknown-name", 1, unknown);
  write_seed(dir + "/seed-refused-missing-conv2a", 2, first);
  auto negative = first;
  negative["Conv2d_1a_3x3.bn.running_var"] = -torch::rand({32});
  write_seed(dir + "/seed-refused-negative-variance", 1, negative);
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
  const size_t needed = data[0] % 95;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto tensors = parse_inception_weights(bytes, "fuzz", needed);
    require(tensors.size() == 4 * needed);
    for (size_t i = 0; i < needed; ++i) {
      const auto& c = inception_convs()[i];
      const auto& w = tensors.at(c.name + ".conv.weight");
      require(w.scalar_type() == torch::kFloat32 && w.sizes() == torch::IntArrayRef({c.out, c.in, c.kh, c.kw}));
      require(torch::isfinite(w).all().item<bool>());
      for (const char* part : {"bn.bias", "bn.running_mean", "bn.running_var"}) {
        const auto& v = tensors.at(c.name + "." + part);
        require(v.scalar_type() == torch::kFloat32 && v.sizes() == torch::IntArrayRef({c.out}));
        require(torch::isfinite(v).all().item<bool>());
      }
      require((tensors.at(c.name + ".bn.running_var") >= 0).all().item<bool>());
    }
  } catch (const std::runtime_error& e) {
    require(std::string(e.what()).find("Inception weight file 'fuzz'") != std::string::npos);
  }
  return 0;
}
