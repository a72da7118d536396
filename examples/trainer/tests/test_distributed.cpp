// The distributed trainer computes what one process computes (ctest entry trainer_distributed,
// docs/distributed.md): the binary on 2 processes on 127.0.0.1 at batch b against 1 process at
// batch 2b, with negatives from every process, and with the gradient all-reduce overlapping
// backward or following it. test_dist_runs.cpp has the runs' starts and failures.
#include "trainer/tests/dist_helpers.hpp"

#include <set>
#include <tuple>

using namespace trainer_tests;
using namespace trainer_tests::distributed;

namespace {

/// Names of the conv biases right before an instance normalisation: the normalisation removes
/// them from every output, so their gradient is zero up to rounding.
std::set<std::string> biases_before_instance_norm(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& item : m.named_modules()) {
    const auto children = item.value()->named_children();
    for (size_t i = 0; i + 1 < children.size(); ++i)
      if (children[i].value()->as<torch::nn::Conv2d>() && children[i + 1].value()->as<torch::nn::InstanceNorm2d>())
        out.insert((item.key().empty() ? "" : item.key() + ".") + children[i].key() + ".bias");
  }
  return out;
}

/// Over the parameters of `a` and `b` but `skip`: the largest ||a - b|| / ||a|| (Frobenius, per
/// tensor) naming its tensor, and the largest elementwise |a - b| / max(|a|, |b|, 1e-2).
/// Per tensor, because Adam's first steps pass the rounding of a near-zero gradient element on at
/// full strength (it moves by lr * g / (|g| + 1e-8)): a few such elements of a tensor differ by
/// up to ~1e-7 absolute while the tensor agrees to ~1e-7 relative (docs/distributed.md).
struct Difference {
  double tensor = 0;
  std::string worst;
  double element = 0;
};
Difference max_relative_difference(torch::nn::Module& a, torch::nn::Module& b, const std::set<std::string>& skip = {}) {
  Difference out;
  auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters()) {
    if (skip.count(p.key())) continue;
    const auto x = p.value().detach().to(torch::kFloat64), y = pb[p.key()].detach().to(torch::kFloat64);
    const double t = (x - y).norm().item<double>() / std::max(x.norm().item<double>(), 1e-30);
    const auto scale = torch::max(torch::max(x.abs(), y.abs()), torch::full_like(x, 1e-2));
    out.element = std::max(out.element, ((x - y).abs() / scale).max().item<double>());
    if (t > out.tensor) out.tensor = t, out.worst = p.key();
  }
  return out;
}

/// `steps` steps at --batch-size 4 on 1 process and at --batch-size 2 on 2 (started by hand),
/// each in its own run folder under `dir`, with `one_extra` and `two_extra` options; returns the two
/// checkpoints' trainers.
std::pair<std::unique_ptr<Trainer>, std::unique_ptr<Trainer>> one_and_two(
    const fs::path& dir, int steps, const std::string& loss, const std::vector<std::string>& one_extra = {},
    const std::vector<std::string>& two_extra = {}) {
  const std::vector<std::string> common = {
      "--steps", std::to_string(steps), "--log-every", "5", "--sample-every", "1000", "--loss", loss};
  auto o = tiny(common), t = tiny(common);
  o.insert(o.end(), {"--run", (dir / "one").string(), "--batch-size", "4"});
  t.insert(t.end(), {"--run", (dir / "two").string(), "--batch-size", "2"});
  o.insert(o.end(), one_extra.begin(), one_extra.end());
  t.insert(t.end(), two_extra.begin(), two_extra.end());
  const int single = wait_exit(spawn(o, {}, dir / "one.out"));
  INFO(read_text(dir / "one.out"));
  REQUIRE(single == 0);
  require_success(spawn_ranks(t, dir / "two.out"));
  CHECK_THAT(read_text(dir / "two.out0"), Catch::Contains("global batch 4 = 2 x --batch-size 2"));
  CHECK_FALSE(fs::exists(dir / "two" / "ckpt.safetensors.tmp"));
  return {load(dir / "one" / "ckpt.safetensors"), load(dir / "two" / "ckpt.safetensors")};
}

}  // namespace

TEST_CASE("2 processes at batch b take the step of 1 process at batch 2b; over 20 steps they log its losses",
          "[distributed]") {
  TempDir dir("dist_equal");
  // One step (PatchNCE): every parameter of G, D and the heads to float32 relative 1e-5, but the
  // conv biases before an instance normalisation, which Adam moves by +-lr whatever the sign of
  // their rounding-level gradient (docs/distributed.md, "Two processes at batch b").
  fs::create_directories(dir.path / "step");
  auto [a, b] = one_and_two(dir.path / "step", 1, "patchnce");
  REQUIRE(b->step() == 1);
  CHECK(b->saved_world() == 2);
  CHECK(a->saved_world() == 1);
  std::set<std::string> skip = biases_before_instance_norm(*a->G);
  for (const auto& n : biases_before_instance_norm(*a->D)) skip.insert(n);
  CHECK(skip.size() == 10);  // in G (with 1 residual block) and D
  for (auto [name, ma, mb] :
       {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", a->G.get(), b->G.get()},
        {"D", a->D.get(), b->D.get()},
        {"F", a->F.module.get(), b->F.module.get()}}) {
    const auto d = max_relative_difference(*ma, *mb, skip);
    fmt::print("2 x b vs 1 x 2b, 1 step: {} largest relative difference {:.3g} per tensor ({}), {:.3g} per element\n",
               name, d.tensor, d.worst, d.element);
    INFO(name << ": " << d.worst);
    CHECK(d.tensor <= 1e-5);
  }

  // 20 steps (the graph loss): the same data and global batch, the same losses while the two runs'
  // rounding differences are still small (the first log window, steps 1-5); afterwards they grow
  // as between any two float32 runs of a GAN with Adam (measured and explained in the docs).
  fs::create_directories(dir.path / "twenty");
  auto [c, e] = one_and_two(dir.path / "twenty", 20, "graph");
  REQUIRE(e->step() == 20);
  auto la = report::read_log(dir.path / "twenty" / "one" / "log.jsonl");
  auto lb = report::read_log(dir.path / "twenty" / "two" / "log.jsonl");
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == 4);
  for (size_t i = 0; i < la.size(); ++i) {
    CHECK(lb[i].at("global_batch") == 4);
    CHECK(lb[i].at("world_size") == 2);
    CHECK(lb[i].at("bytes_all_reduced") > 0);
    CHECK(la[i].count("global_batch") == 0);  // one process: the log is as before
    CHECK(lb[i].at("epoch") == la[i].at("epoch"));
    for (const char* k : {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y"})
      CHECK(lb[i].at(k) == Approx(la[i].at(k)).epsilon(i == 0 ? 5e-4 : 2e-2));
  }
  for (auto [name, ma, mb] :
       {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", c->G.get(), e->G.get()},
        {"D", c->D.get(), e->D.get()},
        {"F", c->F.module.get(), e->F.module.get()}}) {
    const auto d = max_relative_difference(*ma, *mb, skip);
    fmt::print("2 x b vs 1 x 2b, 20 steps: {} largest relative difference {:.3g} per tensor ({}), {:.3g} per element\n",
               name, d.tensor, d.worst, d.element);
  }
}

TEST_CASE(
    "2 processes at batch b with --negatives global take the first step of 1 process at batch 2b with "
    "--negatives minibatch",
    "[distributed]") {
  TempDir dir("dist_negatives");
  for (const char* loss : {"patchnce", "graph"}) {
    INFO(loss);
    const fs::path sub = dir.path / loss;
    fs::create_directories(sub);
    auto [a, b] = one_and_two(sub, 1, loss, {"--negatives", "minibatch"}, {"--negatives", "global"});
    const auto la = report::read_log(sub / "one" / "log.jsonl"), lb = report::read_log(sub / "two" / "log.jsonl");
    REQUIRE(la.size() == 1);
    REQUIRE(lb.size() == 1);
    for (const char* k : {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y"})
      CHECK(lb[0].at(k) == Approx(la[0].at(k)).epsilon(1e-5));
    std::set<std::string> skip = biases_before_instance_norm(*a->G);
    for (const auto& n : biases_before_instance_norm(*a->D)) skip.insert(n);
    for (auto [name, ma, mb] :
         {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", a->G.get(), b->G.get()},
          {"D", a->D.get(), b->D.get()},
          {"F", a->F.module.get(), b->F.module.get()}}) {
      const auto d = max_relative_difference(*ma, *mb, skip);
      INFO(name << ": " << d.worst);
      CHECK(d.tensor <= 1e-5);
    }
    // The control: one process with each image's own negatives computes another loss, so the
    // equality above is the negatives' doing.
    auto image = tiny({"--steps", "1", "--loss", loss, "--batch-size", "4", "--run", (sub / "image").string()});
    REQUIRE(wait_exit(spawn(image, {}, sub / "image.out")) == 0);
    const auto li = report::read_log(sub / "image" / "log.jsonl");
    REQUIRE(li.size() == 1);
    CHECK(std::abs(li[0].at("loss_NCE") - la[0].at("loss_NCE")) > 1e-3 * std::abs(la[0].at("loss_NCE")));
  }
}

TEST_CASE(
    "2 processes end 5 steps with the same parameters whether the gradient all-reduce overlaps backward "
    "or follows it (--no-overlap)",
    "[distributed]") {
  TempDir dir("dist_overlap");
  auto run = [&](const std::string& name, const std::vector<std::string>& extra) {
    auto args = tiny({"--steps", "5", "--log-every", "5", "--sample-every", "1000", "--loss", "graph", "--batch-size",
                      "2", "--run", (dir.path / name).string()});
    args.insert(args.end(), extra.begin(), extra.end());
    INFO(name);
    require_success(spawn_ranks(args, dir.path / (name + ".out")));
    return load(dir.path / name / "ckpt.safetensors");
  };
  auto overlapped = run("overlapped", {});
  auto after = run("after", {"--no-overlap"});
  REQUIRE(overlapped->step() == 5);
  // With 2 ranks each element's all-reduce is one addition, the same in any bucket layout: the
  // two runs agree bit for bit, and log the same losses and bytes.
  for (auto [name, ma, mb] :
       {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", overlapped->G.get(), after->G.get()},
        {"D", overlapped->D.get(), after->D.get()},
        {"F", overlapped->F.module.get(), after->F.module.get()}}) {
    const auto d = max_relative_difference(*ma, *mb);
    INFO(name << ": " << d.worst << " " << d.tensor);
    CHECK(d.tensor == 0);
  }
  const auto lo = report::read_log(dir.path / "overlapped" / "log.jsonl"),
             la = report::read_log(dir.path / "after" / "log.jsonl");
  REQUIRE(lo.size() == 1);
  REQUIRE(la.size() == 1);
  for (const char* k : {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "bytes_all_reduced"})
    CHECK(lo[0].at(k) == la[0].at(k));
  // The control: another learning rate changes the parameters, so the equality is not vacuous.
  auto other = run("other", {"--lr", "0.001"});
  CHECK(max_relative_difference(*overlapped->G, *other->G).tensor > 1e-3);
}
