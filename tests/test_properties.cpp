// Property test: random shapes, dtypes, values and options through every public function and
// module. Every case either throws a c10::Error of a documented kind whose message starts with
// the name of a patchgcl function, or returns finite outputs of the documented shape whose
// gradients are finite. Cases built only from valid arguments and finite values must succeed.
//
// Seeded (PATCHGCL_PROPERTY_SEED, default 6) and bounded by a case count
// (PATCHGCL_PROPERTY_CASES, default 10000, about 6 s in Release on one core): the figures in
// docs/reliability.md come from the summary line this test prints.
#include <catch2/catch.hpp>
#include <patchgcl/blas_kernels.hpp>

#include "properties/module_cases.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace patchgcl_property;

namespace {

// ---- error kinds ---------------------------------------------------------------------------

/// The documented kinds of error (docs/reliability.md), by a phrase every message of the kind has.
const std::vector<std::pair<std::string, std::vector<std::string>>>& error_kinds() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"nan_or_inf_input", {"contains NaN or Inf"}},
      {"overflow", {"is not finite although the inputs are"}},
      {"undefined", {"undefined tensor"}},
      {"empty", {"is empty"}},
      {"dtype", {"dtype"}},
      {"device", {"same device"}},
      {"index_out_of_range", {"must lie in [0, "}},
      {"too_few_nodes", {"needs at least 2 nodes", "cannot keep k"}},
      {"shape",
       {"must be [", "must be a square", "same shape", "channels", "feature maps", "patch id tensors",
        "1-D index tensor"}},
      {"option_value",
       {"must be >= ", "must be in ", "must be a finite value", "must be finite", "at least one",
        "needs pooling_levels", "must be Reduction::kMean"}},
  };
  return kinds;
}

const std::vector<std::string>& patchgcl_names() {
  static const std::vector<std::string> names = {"l2_normalize",     "cosine_adjacency",    "normalize_adjacency",
                                                 "random_patch_ids", "sample_patches",      "info_nce",
                                                 "hop_features",     "shared_hop_features", "TAGConv",
                                                 "TopKPool",         "PatchNCELoss",        "GraphNCELoss"};
  return names;
}

std::string classify(const std::string& message) {
  bool named = false;
  for (const auto& name : patchgcl_names())
    named = named || message.rfind(name + ":", 0) == 0 || message.rfind(name + "::", 0) == 0;
  if (!named) return "";
  for (const auto& kind : error_kinds())
    for (const auto& phrase : kind.second)
      if (message.find(phrase) != std::string::npos) return kind.first;
  return "";
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::stoll(value) : fallback;
}

bool all_finite(const torch::Tensor& t) {
  if (!t.defined() || t.device().is_meta()) return true;
  return !t.is_floating_point() || torch::isfinite(t).all().item<bool>();
}

}  // namespace

TEST_CASE(
    "Every public function and module either raises a documented error or returns finite results of the "
    "documented shape with finite gradients, for thousands of random inputs",
    "[properties]") {
  const int64_t cases = env_int("PATCHGCL_PROPERTY_CASES", 10000);
  const auto seed = static_cast<uint32_t>(env_int("PATCHGCL_PROPERTY_SEED", 6));
  torch::manual_seed(seed);
  Gen g{std::mt19937(seed)};
  using Generator = std::function<void(Gen&, Case&)>;
  const std::vector<std::pair<std::string, Generator>> targets = {
      {"l2_normalize", l2_normalize_case},
      {"cosine_adjacency", cosine_adjacency_case},
      {"normalize_adjacency", normalize_adjacency_case},
      {"random_patch_ids", random_patch_ids_case},
      {"sample_patches", sample_patches_case},
      {"info_nce", info_nce_case},
      {"hop_features", [](Gen& g, Case& c) { hop_features_case(g, c, false); }},
      {"shared_hop_features", [](Gen& g, Case& c) { hop_features_case(g, c, true); }},
      {"TAGConv", tag_conv_case},
      {"TopKPool", topk_pool_case},
      {"PatchNCELoss", patch_nce_case},
      {"GraphNCELoss", graph_nce_case},
  };

  std::map<std::string, int64_t> errors_by_kind, runs_by_target, successes_by_target;
  std::vector<std::string> broken;  // rule violations, with the case that broke them
  int64_t successes = 0;
  auto violation = [&](const Case& c, const std::string& rule) {
    if (broken.size() < 20) broken.push_back(rule + " -- " + c.what + c.why);
  };

  for (int64_t i = 0; i < cases; ++i) {
    const auto& target = targets[static_cast<size_t>(i) % targets.size()];
    Case c;
    g.c = &c;
    ++runs_by_target[target.first];
    try {
      target.second(g, c);
    } catch (const c10::Error& e) {
      const std::string message = e.msg();
      const auto kind = classify(message);
      if (kind.empty()) {
        violation(c, "undocumented error '" + message.substr(0, 300) + "'");
        continue;
      }
      ++errors_by_kind[kind];
      if (!c.invalid && !c.nonfinite && !c.risky)
        violation(c, "valid finite input raised '" + message.substr(0, 300) + "'");
      if (kind == "overflow" && !c.risky) violation(c, "overflow error on inputs that cannot overflow");
      continue;
    } catch (const std::exception& e) {
      violation(c, std::string("non-c10 exception: ") + e.what());
      continue;
    }
    ++successes;
    ++successes_by_target[target.first];
    if (c.invalid) violation(c, "an invalid argument was accepted");
    if (c.nonfinite && c.scanned) violation(c, "NaN/Inf input passed the scan");
    for (size_t o = 0; o < c.outputs.size(); ++o) {
      if (c.outputs[o].sizes().vec() != c.shapes[o])
        violation(c, "output " + std::to_string(o) + " has shape " + c10::str(c.outputs[o].sizes()) + ", expected " +
                         c10::str(c10::IntArrayRef(c.shapes[o])));
    }
    const bool must_be_finite = !(c.nonfinite || (c.risky && !c.scanned));
    if (!must_be_finite) continue;
    for (size_t o = 0; o < c.outputs.size(); ++o)
      if (!all_finite(c.outputs[o])) violation(c, "output " + std::to_string(o) + " is not finite");
    if (c.extra) {
      try {
        c.extra();
      } catch (const std::exception& e) {
        violation(c, std::string("property of the result failed: ") + e.what());
      }
    }
    // d(sum_o <w_o, out_o>)/d(leaves), random weights w_o
    torch::Tensor objective;
    for (auto& out : c.outputs) {
      if (!out.requires_grad()) continue;
      auto term = (out.to(torch::kFloat64) * torch::rand(out.sizes(), torch::kFloat64)).sum();
      objective = objective.defined() ? objective + term : term;
    }
    if (!objective.defined() || c.risky || c.half_small) continue;
    objective.backward();
    for (auto& leaf : c.leaves)
      if (leaf.grad().defined() && !all_finite(leaf.grad())) violation(c, "a gradient is not finite");
  }

  std::ostringstream summary;
  int64_t errors = 0;
  for (auto& e : errors_by_kind) errors += e.second;
  summary << "property test: seed " << seed << ", " << cases << " cases, " << successes << " finite results, " << errors
          << " documented errors (";
  bool first = true;
  for (auto& e : errors_by_kind) {
    summary << (first ? "" : ", ") << e.first << " " << e.second;
    first = false;
  }
  summary << "); finite results per target:";
  for (auto& t : runs_by_target) summary << " " << t.first << " " << successes_by_target[t.first] << "/" << t.second;
  std::cout << summary.str() << std::endl;
  WARN(summary.str());

  INFO("first rule violations:\n"
       << [&] {
            std::string all;
            for (auto& b : broken) all += "  " + b + "\n";
            return all;
          }());
  CHECK(broken.empty());
  CHECK(successes > cases / 3);  // the generator mostly produces usable inputs
}

TEST_CASE("patchgcl::set_num_threads sizes LibTorch's pool and OpenBLAS's where OpenBLAS is loaded", "[properties]") {
  const int before = at::get_num_threads();
  // Where the process has mapped an OpenBLAS (Linux: /proc/self/maps), it must be found and told.
  bool openblas_mapped = false;
  if (std::ifstream maps("/proc/self/maps"); maps) {
    for (std::string line; std::getline(maps, line);) openblas_mapped |= line.find("openblas") != std::string::npos;
  }
  const bool told = patchgcl::set_num_threads(2);
  if (openblas_mapped) CHECK(told);
  CHECK(at::get_num_threads() == 2);
  // Loaded iff its symbols resolve; then it must report what it was told.
  CHECK(told == (patchgcl::blas_num_threads() != -1));
  if (told) CHECK(patchgcl::blas_num_threads() == 2);
  patchgcl::set_num_threads(1);
  CHECK(at::get_num_threads() == 1);
  if (told) CHECK(patchgcl::blas_num_threads() == 1);
  CHECK_THROWS_WITH(patchgcl::set_num_threads(0),
                    Catch::Contains("patchgcl::set_num_threads: threads must be >= 1, got 0"));
  patchgcl::set_num_threads(before);
}

TEST_CASE("patchgcl::blas_kernel_advice names OPENBLAS_CORETYPE only when OpenBLAS fell back to its generic kernels",
          "[properties]") {
  using patchgcl::CpuVectorUnits;
  const CpuVectorUnits none{}, avx2{true, false}, avx512{true, true};
  // The fallback on a CPU with better units: the kernel set that fits them.
  CHECK_THAT(patchgcl::blas_kernel_advice("Prescott", avx512), Catch::Contains("core 'Prescott'") &&
                                                                   Catch::Contains("AVX-512") &&
                                                                   Catch::Contains("OPENBLAS_CORETYPE=SkylakeX"));
  CHECK_THAT(patchgcl::blas_kernel_advice("PRESCOTT", avx2),
             Catch::Contains("AVX2") && Catch::Contains("OPENBLAS_CORETYPE=Haswell"));
  // Nothing to say: a kernel set of this CPU's era, an old CPU, or no OpenBLAS.
  CHECK(patchgcl::blas_kernel_advice("SkylakeX", avx512).empty());
  CHECK(patchgcl::blas_kernel_advice("Haswell", avx512).empty());
  CHECK(patchgcl::blas_kernel_advice("Prescott", none).empty());
  CHECK(patchgcl::blas_kernel_advice("", avx512).empty());
  // This process: the core name is there iff OpenBLAS is loaded, and the advice is one of the above.
  CHECK(patchgcl::blas_core_name().empty() == (patchgcl::blas_num_threads() == -1));
  CHECK(patchgcl::blas_kernel_advice() ==
        patchgcl::blas_kernel_advice(patchgcl::blas_core_name(), patchgcl::cpu_vector_units()));
}
