// Reference parity: patchgcl reproduces the loss values and gradients of the authors' Python code
// (PatchGCL, CUT, PUT) and of DGL's / PyG's graph layers. Expected numbers come from
// tests/fixtures, written by tests/reference/generate_fixtures.py (see tests/reference/README.md).

#include <patchgcl/io/tensor_file.hpp>
#include <patchgcl/patchgcl.hpp>

#include <catch2/catch.hpp>

#include "support/device.hpp"
#include "support/fixture.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace patchgcl;
using patchgcl::io::TensorFile;
using patchgcl_test::check_close;
using patchgcl_test::Precision;

namespace {

struct LossInputs {
  std::vector<torch::Tensor> output_features, input_features, patch_ids;
};

/// The fixture's loss inputs in `dtype` on the test device (PATCHGCL_TEST_DEVICE).
LossInputs loss_inputs(const TensorFile& f, c10::ScalarType dtype) {
  const auto device = patchgcl_test::device();
  LossInputs in;
  for (int64_t l = 0; l < f.config_int("num_layers"); ++l) {
    const auto i = std::to_string(l);
    in.output_features.push_back(f.at("output_features." + i).to(device, dtype).requires_grad_(true));
    in.input_features.push_back(f.at("input_features." + i).to(device, dtype).requires_grad_(true));
    in.patch_ids.push_back(f.at("patch_ids." + i).to(device));
  }
  return in;
}

/// Runs the loss `module` on the fixture's inputs with the fixture's weights copied into it by name,
/// and compares the loss and the gradients w.r.t. the output features and every parameter.
template <typename Module>
void check_loss_parity(const TensorFile& f, Module& module, const Precision& p) {
  INFO("case " << f.config_string("case") << ", " << p.name << ", " << patchgcl_test::device());
  module->to(patchgcl_test::device(), p.dtype);
  io::load_parameters(*module, f, "param.");
  auto in = loss_inputs(f, p.dtype);
  auto loss = module->forward(in.output_features, in.input_features, in.patch_ids);
  REQUIRE(loss.scalar_type() == p.dtype);
  check_close(loss, f.at("expected.loss"), p.rel, "loss");
  loss.backward();
  for (size_t l = 0; l < in.output_features.size(); ++l) {
    check_close(in.output_features[l].grad(), f.at("grad.output_features." + std::to_string(l)), p.rel,
                "d loss / d output_features." + std::to_string(l));
    patchgcl_test::check_no_gradient(in.input_features[l].grad(),
                                     "input_features." + std::to_string(l) + " is the detached input side");
  }
  for (const auto& param : module->named_parameters()) {
    check_close(param.value().grad(), f.at("grad." + param.key()), p.rel, "d loss / d " + param.key());
  }
}

GraphNCELoss reference_graph_loss(const TensorFile& f) {
  auto options = GraphNCELossOptions::reference(f.config_ints("in_channels"))
                     .num_patches(f.config_int("num_patches"))
                     .nc(f.config_int("nc"));
  options.adjacency().threshold(f.config_double("threshold"));
  return GraphNCELoss(options);
}

PatchNCELossOptions patch_nce_options(const TensorFile& f) {
  return PatchNCELossOptions(f.config_ints("in_channels"))
      .num_patches(f.config_int("num_patches"))
      .nc(f.config_int("nc"));
}

}  // namespace

TEST_CASE("GraphNCELoss::reference reproduces the released PatchGCL loss and its gradients", "[parity][graph]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto name = GENERATE(as<std::string>{}, "graph_nce_small", "graph_nce_released");
  const auto f = patchgcl_test::load_fixture(name);
  auto loss = reference_graph_loss(f);
  check_loss_parity(f, loss, p);
}

TEST_CASE("The reference graph preset builds the released adjacency: strict > 0.1 on detached embeddings",
          "[parity][graph]") {
  const auto f = patchgcl_test::load_fixture("graph_nce_small");
  const auto options = GraphNCELossOptions::reference(f.config_ints("in_channels"));
  for (int64_t l = 0; l < f.config_int("num_layers"); ++l) {
    const auto i = std::to_string(l);
    INFO("layer " << l);
    auto adjacency = functional::cosine_adjacency(f.at("trace.input_embedding_" + i).to(patchgcl_test::device()),
                                                  options.adjacency());
    // Exact although another BLAS sums the cosines in another order: generate_fixtures.py draws
    // inputs with no cosine within 1e-5 of the threshold (here the closest is 2.2e-3 from 0.1).
    CHECK(torch::equal(adjacency.to(torch::kCPU, torch::kFloat64), f.at("trace.adjacency_" + i)));
  }
}

TEST_CASE("PatchNCELoss reproduces CUT's PatchNCE with its MLP head and gradients", "[parity][patchnce]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("patchnce_cut");
  REQUIRE(f.config_string("pruning") == "none");
  PatchNCELoss loss(patch_nce_options(f));
  check_loss_parity(f, loss, p);
}

TEST_CASE("PatchNCELossOptions::put reproduces PUT's released pruning (sort along dim 0, first k columns)",
          "[parity][patchnce][put]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("patchnce_put_code");
  REQUIRE(f.config_string("pruning") == "column_sort");
  auto options = PatchNCELossOptions::put(f.config_ints("in_channels"), f.config_int("hard_negatives"))
                     .num_patches(f.config_int("num_patches"))
                     .nc(f.config_int("nc"));
  PatchNCELoss loss(options);
  check_loss_parity(f, loss, p);
}

TEST_CASE("Pruning::kHardestPerAnchor keeps each anchor's k hardest negatives as the PUT paper describes",
          "[parity][patchnce][put]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("patchnce_put_paper");
  REQUIRE(f.config_string("pruning") == "hardest_per_query");
  auto options = patch_nce_options(f);
  options.info_nce().pruning(Pruning::kHardestPerAnchor).hard_negatives(f.config_int("hard_negatives"));
  PatchNCELoss loss(options);
  check_loss_parity(f, loss, p);
}

namespace {

/// TAGConv on the fixture's graph with `self_loops`; compares output and gradients of <out, cotangent>.
void check_tagconv_parity(const TensorFile& f, SelfLoops self_loops, const Precision& p) {
  const auto device = patchgcl_test::device();
  INFO("case " << f.config_string("case") << ", " << p.name << ", " << device);
  TAGConv conv(TAGConvOptions(f.config_int("in_channels"), f.config_int("out_channels")).hops(f.config_int("hops")));
  conv->to(device, p.dtype);
  io::load_parameters(*conv, f, "param.");
  auto abar = functional::normalize_adjacency(f.at("adjacency").to(device, p.dtype),
                                              NormalizeAdjacencyOptions().self_loops(self_loops));
  if (f.contains("expected.normalized_adjacency"))
    check_close(abar, f.at("expected.normalized_adjacency"), p.rel, "normalised adjacency");
  auto x = f.at("x").to(device, p.dtype).requires_grad_(true);
  auto out = conv->forward(x, abar);
  check_close(out, f.at("expected.output"), p.rel, "output");
  (out * f.at("cotangent").to(device, p.dtype)).sum().backward();
  check_close(x.grad(), f.at("grad.x"), p.rel, "d / d x");
  check_close(conv->lin->weight.grad(), f.at("grad.lin.weight"), p.rel, "d / d lin.weight");
  check_close(conv->lin->bias.grad(), f.at("grad.lin.bias"), p.rel, "d / d lin.bias");
}

}  // namespace

TEST_CASE("TAGConv on SelfLoops::kDouble reproduces DGL's TAGConv after dgl.add_self_loop", "[parity][layers]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("tagconv_dgl");
  REQUIRE(f.config_string("self_loops") == "double");
  check_tagconv_parity(f, SelfLoops::kDouble, p);
}

TEST_CASE("TAGConv with the concatenated weight reproduces PyG's TAGConv, isolated node included", "[parity][layers]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("tagconv_pyg");
  REQUIRE(f.config_string("self_loops") == "none");
  check_tagconv_parity(f, SelfLoops::kNone, p);
}

TEST_CASE("TopKPool with tanh, score / ||p|| and no bias reproduces PyG's TopKPooling", "[parity][layers]") {
  const auto p = GENERATE(from_range(patchgcl_test::precisions()));
  const auto f = patchgcl_test::load_fixture("topk_pool_pyg");
  const auto device = patchgcl_test::device();
  INFO(p.name << ", " << device);
  TopKPool pool(TopKPoolOptions(f.config_int("in_channels"))
                    .k(f.config_int("k"))
                    .activation(ScoreActivation::kTanh)
                    .bias(false)
                    .divide_by_norm(true)
                    .pooled_adjacency(PooledAdjacency::kInduced));
  pool->to(device, p.dtype);
  io::load_parameters(*pool, f, "param.");
  auto x = f.at("x").to(device, p.dtype).requires_grad_(true);
  // PyG scores and pools the same features: output and input are one tensor.
  auto out = pool->forward(x, x, f.at("adjacency").to(device, p.dtype));
  // The ranking, and so the kept nodes and their induced A_p, is exact in float32 too: the
  // fixture's 12 scores lie at least 1e-4 apart (generate_fixtures.py; 2.6e-2 here).
  CHECK(torch::equal(out.indices.cpu(), f.at("expected.indices")));
  check_close(out.scores, f.at("expected.scores"), p.rel, "scores");
  check_close(out.output, f.at("expected.pooled"), p.rel, "pooled output features");
  check_close(out.input, f.at("expected.pooled"), p.rel, "pooled input features");
  CHECK(torch::equal(out.adjacency.to(torch::kCPU, torch::kFloat64), f.at("expected.pooled_adjacency")));
  (out.output * f.at("cotangent").to(device, p.dtype)).sum().backward();
  check_close(x.grad(), f.at("grad.x"), p.rel, "d / d x");
  check_close(pool->proj->weight.grad(), f.at("grad.proj.weight"), p.rel, "d / d proj.weight");
}

TEST_CASE("A PatchGCL checkpoint converted by convert-reference-weights.py loads by name and reproduces its loss",
          "[parity][io]") {
  const auto converted = patchgcl_test::load_fixture("converted_patchgcl_small");
  const auto f = patchgcl_test::load_fixture("graph_nce_small");
  REQUIRE(converted.config_string("source") == "patchgcl");
  GraphNCELoss loss(GraphNCELossOptions::reference(converted.config_ints("in_channels"))
                        .nc(converted.config_int("nc"))
                        .num_patches(f.config_int("num_patches"))
                        .pooling_levels(converted.config_int("pooling_levels")));
  loss->to(patchgcl_test::device(), torch::kFloat64);
  io::load_parameters(*loss, converted);
  for (const auto& param : loss->named_parameters())  // both files hold copies of the same float64 weights
    CHECK(torch::equal(param.value().cpu(), f.at("param." + param.key())));
  auto in = loss_inputs(f, torch::kFloat64);
  check_close(loss->forward(in.output_features, in.input_features, in.patch_ids), f.at("expected.loss"), 1e-9, "loss");
}

TEST_CASE("load_parameters rejects a file whose names do not match the module", "[parity][io]") {
  const auto f = patchgcl_test::load_fixture("tagconv_dgl");
  TAGConv conv(TAGConvOptions(f.config_int("in_channels"), f.config_int("out_channels")).hops(f.config_int("hops")));
  CHECK_THROWS_WITH(io::load_parameters(*conv, f, "grad.x."), Catch::Contains("no tensor"));
  TAGConv wrong_hops(TAGConvOptions(f.config_int("in_channels"), f.config_int("out_channels")).hops(1));
  CHECK_THROWS_WITH(io::load_parameters(*wrong_hops, f, "param."), Catch::Contains("shape"));
}

TEST_CASE("write_tensor_file rewrites a fixture byte for byte and read_tensor_file reads it back exactly",
          "[parity][io]") {
  const auto f = patchgcl_test::load_fixture("tagconv_pyg");
  const std::string path = "parity_roundtrip.pgt";
  io::write_tensor_file(path, f.tensors, f.config);
  auto slurp = [](const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  CHECK(slurp(path) == slurp(std::string(patchgcl_test::fixture_dir()) + "/tagconv_pyg.pgt"));
  const auto back = io::read_tensor_file(path);
  CHECK(back.config == f.config);
  REQUIRE(back.tensors.size() == f.tensors.size());
  for (const auto& kv : f.tensors) {
    INFO(kv.first);
    CHECK(torch::equal(back.at(kv.first), kv.second));
  }
  std::remove(path.c_str());
}
