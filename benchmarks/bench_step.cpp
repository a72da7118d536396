// Where a training step's wall time goes (docs/benchmarks.md, "A training step").
//
//   build/benchmarks/patchgcl_step_profile                          # demo setting, graph/patchnce/put
//   build/benchmarks/patchgcl_step_profile --size 256 --ngf 64 --blocks 9 --ndf 64 --steps 5   # CUT's defaults
//   build/benchmarks/patchgcl_step_profile --features vgg16 --size 128    # the paper's features (fetch-vgg16.py's
//   weights) options: --loss graph|patchnce|put|all  --features encoder|vgg16  --vgg-weights FILE  --size N  --ngf N
//            --blocks N  --ndf N  --steps N  --warmup N
//            --threads N (LibTorch and OpenBLAS, patchgcl::set_num_threads)  --time wall|cpu
//
// It runs the example trainer's iteration (examples/trainer/train/trainer.hpp, Trainer::train_step: CUT's
// optimize_parameters with the generator-encoder or VGG16 features, the identity term, LSGAN) in two ways:
//   * "whole step": Trainer::train_step itself, timed as a whole;
//   * "staged": the same computation with the autograd graph cut at G's output and at the query
//     feature maps (detached leaves; their gradients are passed on by hand), so that each backward
//     runs on its own and can be timed:
//       data        the synthetic batch of this step (UnpairedDataset::batch)
//       G fwd+bwd   the generator on [X; Y], and its backward from the gradient collected at G(.)
//       features    the feature extractor on queries and keys (G's encoder, run again as in CUT, or the
//                   frozen VGG16) and its backward from the gradient of the loss at the query maps
//       loss        the contrastive loss (both terms) forward and backward (into the heads and the maps)
//       D           the discriminator's loss forward+backward and the GAN term of G through D
//       optimizer   zero_grad + Adam steps of D, G and the heads
//   The gradients are the same as the whole step's (the chain rule applied in pieces); the staged
//   total is reported next to the whole step so the cost of cutting the graph shows.
// Medians over --steps timed steps after --warmup untimed ones.
//
//   build/benchmarks/patchgcl_step_profile --paper-trace trace.json [--steps 20] [--loss patchnce]
// instead records LibTorch's autograd profiler (legacy, chrome-trace JSON) over --steps
// forward+backward calls of GraphNCELoss (or, with --loss patchnce / put, PatchNCELoss) in the
// paper setting (the `paper` workload of bench_losses.cpp); scripts/op-profile.py sums it by op
// (self time).

#define PATCHGCL_TRAINER_STB_IMPLEMENTATION  // this binary's one definition of stb_image_resize
#include "trainer/data/dataset.hpp"
#include "trainer/train/trainer.hpp"

#include <patchgcl/blas_kernels.hpp>
#include <patchgcl/detail/integer.hpp>
#include <patchgcl/threads.hpp>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using trainer::LossKind;

struct Settings {
  std::string loss = "all";
  trainer::FeatureKind features = trainer::FeatureKind::kEncoder;
  std::string vgg_weights;                        ///< empty: trainer::default_vgg16_weights()
  int size = 48, ngf = 16, blocks = 3, ndf = 16;  // scripts/demo.sh's defaults
  int steps = 20, warmup = 3, threads = 0;
};

const std::vector<std::string> kPhases = {"data", "G fwd+bwd", "features", "loss fwd+bwd", "D", "optimizer"};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// --time cpu: the process's CPU time instead of wall time. With 1 thread it is the work done,
/// without the time spent waiting for a core on a loaded machine (with more threads it sums them).
bool g_cpu_time = false;

struct Stamp {
  Clock::time_point wall = Clock::now();
  std::clock_t cpu = std::clock();
};

double ms_since(Stamp& t0) {
  Stamp now;
  const double ms = g_cpu_time ? 1e3 * double(now.cpu - t0.cpu) / CLOCKS_PER_SEC
                               : std::chrono::duration<double, std::milli>(now.wall - t0.wall).count();
  t0 = now;
  return ms;
}

trainer::TrainConfig make_config(const Settings& s, LossKind loss) {
  trainer::TrainConfig c;
  c.loss = loss;
  c.features = s.features;
  c.data.root = trainer::kSyntheticData;
  c.data.synthetic_size = s.size;
  c.data.synthetic_count = 8;
  c.ngf = s.ngf;
  c.n_blocks = s.blocks;
  c.ndf = s.ndf;
  c.steps = 1000000;  // constant learning rate
  c.validate();
  return c;
}

/// The pieces of Trainer for the staged step (same construction, same seed).
struct Staged {
  trainer::TrainConfig config;
  trainer::ResnetGenerator G{nullptr};
  trainer::PatchDiscriminator D{nullptr};
  std::unique_ptr<trainer::FeatureExtractor> features;
  trainer::ContrastiveCriterion F;
  std::unique_ptr<torch::optim::Adam> opt_G, opt_D, opt_F;

  Staged(trainer::TrainConfig c, const std::string& vgg_weights) : config(std::move(c)) {
    torch::manual_seed(config.seed);
    G = trainer::ResnetGenerator(trainer::GeneratorOptions().ngf(config.ngf).n_blocks(config.n_blocks));
    D = trainer::PatchDiscriminator(trainer::DiscriminatorOptions().ndf(config.ndf));
    features = trainer::make_features(config.features, G, vgg_weights, torch::kCPU);
    int64_t patches = config.num_patches;
    {
      torch::NoGradGuard no_grad;
      for (const auto& f : (*features)(torch::zeros({1, 3, config.data.synthetic_size, config.data.synthetic_size})))
        patches = std::min(patches, f.size(2) * f.size(3));
    }
    F = trainer::make_criterion(config.loss, features->channels(), patches);
    auto adam = [&] { return torch::optim::AdamOptions(config.lr).betas(std::make_tuple(config.beta1, config.beta2)); };
    opt_G = std::make_unique<torch::optim::Adam>(G->parameters(), adam());
    opt_D = std::make_unique<torch::optim::Adam>(D->parameters(), adam());
    opt_F = std::make_unique<torch::optim::Adam>(F.module->parameters(), adam());
  }

  static void requires_grad(torch::nn::Module& m, bool on) {
    for (auto& p : m.parameters()) p.set_requires_grad(on);
  }

  static std::vector<torch::Tensor> leaves(const std::vector<torch::Tensor>& maps) {
    std::vector<torch::Tensor> out;
    for (const auto& m : maps) out.push_back(m.detach().requires_grad_(true));
    return out;
  }

  /// One iteration; adds each phase's milliseconds to `ms`.
  void step(const trainer::UnpairedDataset& data, int64_t index, std::map<std::string, double>& ms) {
    Stamp t0;
    trainer::Batch batch = data.batch(index, config.batch_size);
    ms["data"] += ms_since(t0);

    G->train();
    D->train();
    const int64_t n = batch.real_A.size(0);
    auto fake = G->forward(torch::cat({batch.real_A, batch.real_B}));
    ms["G fwd+bwd"] += ms_since(t0);
    auto fake_leaf = fake.detach().requires_grad_(true);
    auto fake_B = fake_leaf.narrow(0, 0, n), idt_B = fake_leaf.narrow(0, n, n);

    requires_grad(*D, true);
    opt_D->zero_grad();
    auto loss_D = 0.5 * (D->forward(fake_B.detach()).pow(2).mean() + (D->forward(batch.real_B) - 1).pow(2).mean());
    loss_D.backward();
    ms["D"] += ms_since(t0);
    opt_D->step();
    requires_grad(*D, false);
    opt_G->zero_grad();
    opt_F->zero_grad();
    ms["optimizer"] += ms_since(t0);
    auto loss_G_GAN = (D->forward(fake_B) - 1).pow(2).mean() * config.lambda_gan;
    loss_G_GAN.backward();  // into fake_leaf
    ms["D"] += ms_since(t0);

    auto q_X = (*features)(fake_B), k_X = (*features)(batch.real_A);
    auto q_Y = (*features)(idt_B), k_Y = (*features)(batch.real_B);
    ms["features"] += ms_since(t0);
    auto lq_X = leaves(q_X), lq_Y = leaves(q_Y);
    auto loss_NCE = 0.5 * (F.forward(lq_X, k_X) + F.forward(lq_Y, k_Y)) * config.lambda();
    loss_NCE.backward();
    ms["loss fwd+bwd"] += ms_since(t0);
    std::vector<torch::Tensor> roots, grads;
    for (size_t i = 0; i < q_X.size(); ++i) {
      for (auto [q, l] : {std::pair{q_X[i], lq_X[i]}, std::pair{q_Y[i], lq_Y[i]}}) {
        if (l.grad().defined()) {
          roots.push_back(q);
          grads.push_back(l.grad());
        }
      }
    }
    torch::autograd::backward(roots, grads);  // into G's encoder and fake_leaf
    ms["features"] += ms_since(t0);
    fake.backward(fake_leaf.grad());
    ms["G fwd+bwd"] += ms_since(t0);
    opt_G->step();
    opt_F->step();
    ms["optimizer"] += ms_since(t0);
  }
};

void profile(const Settings& s, LossKind loss, const std::string& name) {
  auto config = make_config(s, loss);
  trainer::UnpairedDataset data(config.data);

  // Whole step: the trainer's own iteration.
  std::vector<double> whole;
  {
    trainer::Trainer t(config, torch::kCPU, s.vgg_weights);
    for (int i = 0; i < s.warmup + s.steps; ++i) {
      auto batch = data.batch(i, config.batch_size);
      Stamp t0;
      t.train_step(batch);
      if (i >= s.warmup) whole.push_back(ms_since(t0));
    }
  }
  // Staged.
  Staged staged(config, s.vgg_weights);
  std::map<std::string, std::vector<double>> per_phase;
  std::vector<double> totals;
  for (int i = 0; i < s.warmup + s.steps; ++i) {
    std::map<std::string, double> ms;
    Stamp t0;
    staged.step(data, i, ms);
    const double total = ms_since(t0);
    if (i < s.warmup) continue;
    totals.push_back(total);
    for (const auto& p : kPhases) per_phase[p].push_back(ms[p]);
  }
  std::string row = fmt::format("| {} | {:.1f} | {:.1f} |", name, median(whole), median(totals));
  for (const auto& p : kPhases) {
    const double m = median(per_phase[p]);
    row += fmt::format(" {:.1f} ({:.0f}%) |", m, 100.0 * m / median(totals));
  }
  fmt::print("{}\n", row);
}

/// GraphNCELoss (or PatchNCELoss: `loss_name` patchnce / put) fwd+bwd in the paper setting
/// (relu3_1, relu4_1, relu4_3 of a 256x256 image, N = 256, nc = 256), `calls` times under the
/// autograd profiler, after two unprofiled calls.
void paper_trace(int calls, const std::string& path, const std::string& loss_name) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> out, in;
  for (auto [c, side] : {std::pair<int64_t, int64_t>{256, 64}, {512, 32}, {512, 32}}) {
    in.push_back(torch::relu(torch::randn({1, c, side, side})));
    out.push_back(torch::relu(torch::randn({1, c, side, side})).requires_grad_(true));
  }
  patchgcl::GraphNCELoss graph(patchgcl::GraphNCELossOptions::reference({256, 512, 512}).num_patches(256).nc(256));
  const auto nce_options = patchgcl::PatchNCELossOptions({256, 512, 512}).num_patches(256).nc(256);
  patchgcl::PatchNCELoss nce(
      loss_name == "put" ? patchgcl::PatchNCELossOptions::put({256, 512, 512}).num_patches(256).nc(256) : nce_options);
  const bool graph_loss = loss_name == "graph" || loss_name == "all";
  auto step = [&] {
    (graph_loss ? graph->forward(out, in) : nce->forward(out, in)).backward();
    for (auto& p : graph_loss ? graph->parameters() : nce->parameters()) p.mutable_grad() = torch::Tensor();
    for (auto& o : out) o.mutable_grad() = torch::Tensor();
  };
  step();
  step();
  Stamp t0;
  {
    torch::autograd::profiler::RecordProfile guard(path);
    for (int i = 0; i < calls; ++i) step();
  }
  fmt::print("{} profiled paper-setting {} fwd+bwd calls ({:.1f} ms each with the profiler on) -> {}\n", calls,
             graph_loss           ? "GraphNCELoss"
             : loss_name == "put" ? "PatchNCELoss (PUT)"
                                  : "PatchNCELoss",
             ms_since(t0) / calls, path);
}

trainer::FeatureKind parse_features(const std::string& value) {
  for (const auto& [name, kind] : trainer::feature_names())
    if (name == value) return kind;
  throw std::invalid_argument(fmt::format("--features must be encoder or vgg16 (got '{}')", value));
}

int parse_int(const std::string& option, const char* value) {
  return patchgcl::detail::parse_integer<int>(option, value, 0, 100000);
}

}  // namespace

int main(int argc, char** argv) try {
  Settings s;
  std::string trace;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(fmt::format("{} needs a value", a));
    const char* v = argv[++i];
    if (a == "--loss") s.loss = v;
    else if (a == "--paper-trace") trace = v;
    else if (a == "--features") s.features = parse_features(v);
    else if (a == "--vgg-weights") s.vgg_weights = v;
    else if (a == "--size") s.size = parse_int(a, v);
    else if (a == "--ngf") s.ngf = parse_int(a, v);
    else if (a == "--blocks") s.blocks = parse_int(a, v);
    else if (a == "--ndf") s.ndf = parse_int(a, v);
    else if (a == "--steps") s.steps = parse_int(a, v);
    else if (a == "--warmup") s.warmup = parse_int(a, v);
    else if (a == "--threads") s.threads = parse_int(a, v);
    else if (a == "--time") {
      if (std::string(v) != "wall" && std::string(v) != "cpu")
        throw std::invalid_argument(fmt::format("--time must be wall or cpu (got '{}')", v));
      g_cpu_time = std::string(v) == "cpu";
    } else throw std::invalid_argument(fmt::format("unknown option '{}'", a));
  }
  if (s.steps < 1) throw std::invalid_argument("--steps must be at least 1 (got 0)");
  if (s.loss != "all" && s.loss != "graph" && s.loss != "patchnce" && s.loss != "put")
    throw std::invalid_argument(fmt::format("--loss must be graph, patchnce, put or all (got '{}')", s.loss));
  if (s.threads > 0) patchgcl::set_num_threads(s.threads);
  torch::set_num_interop_threads(1);
  if (!trace.empty()) {
    paper_trace(s.steps, trace, s.loss);
    return 0;
  }
  fmt::print(
      "size {} px, ngf {}, {} blocks, ndf {}, batch 1, {} features, identity term; {} threads "
      "(OpenBLAS {}, kernels '{}'); {} time, medians of {} steps after {} warm-up\n\n",
      s.size, s.ngf, s.blocks, s.ndf, trainer::to_string(s.features), torch::get_num_threads(),
      patchgcl::blas_num_threads(), patchgcl::blas_core_name(), g_cpu_time ? "CPU" : "wall", s.steps, s.warmup);
  std::string head = "| loss | whole step ms | staged ms |", rule = "|---|---:|---:|";
  for (const auto& p : kPhases) {
    head += fmt::format(" {} ms |", p);
    rule += "---:|";
  }
  fmt::print("{}\n{}\n", head, rule);
  const std::vector<std::pair<std::string, LossKind>> losses = {
      {"graph", LossKind::kGraph}, {"patchnce", LossKind::kPatchNCE}, {"put", LossKind::kPUT}};
  for (const auto& [name, kind] : losses) {
    if (s.loss == "all" || s.loss == name) profile(s, kind, name);
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "patchgcl_step_profile: {}\n", e.what());
  return 2;
}
