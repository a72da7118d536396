// The distributed trainer run as a user runs it (ctest entry trainer_distributed,
// docs/distributed.md): the binary on 2 processes on 127.0.0.1, started by `launch` or by hand
// with torchrun's variables. Rendezvous ports come from a c10d store on port 0 (the OS picks).
#include "trainer/tests/dist_helpers.hpp"

#include <chrono>
#include <csignal>
#include <set>
#include <tuple>
#include <thread>

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
std::pair<std::unique_ptr<Trainer>, std::unique_ptr<Trainer>> one_and_two(const fs::path& dir, int steps,
                                                                          const std::string& loss,
                                                                          const std::vector<std::string>& one_extra = {},
                                                                          const std::vector<std::string>& two_extra = {}) {
  const std::vector<std::string> common = {"--steps", std::to_string(steps), "--log-every", "5", "--sample-every",
                                           "1000", "--loss", loss};
  auto o = tiny(common), t = tiny(common);
  o.insert(o.end(), {"--run", (dir / "one").string(), "--batch-size", "4"});
  t.insert(t.end(), {"--run", (dir / "two").string(), "--batch-size", "2"});
  o.insert(o.end(), one_extra.begin(), one_extra.end());
  t.insert(t.end(), two_extra.begin(), two_extra.end());
  const int single = wait_exit(spawn(o, {}, dir / "one.out"));
  INFO(read_text(dir / "one.out"));
  REQUIRE(single == 0);
  auto pids = spawn_ranks(t, dir / "two.out");
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << ":\n" << read_text(dir / ("two.out" + std::to_string(r))));
    REQUIRE(wait_exit(pids[static_cast<size_t>(r)]) == 0);
  }
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
  for (auto [name, ma, mb] : {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", a->G.get(), b->G.get()},
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
  for (auto [name, ma, mb] : {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", c->G.get(), e->G.get()},
                              {"D", c->D.get(), e->D.get()},
                              {"F", c->F.module.get(), e->F.module.get()}}) {
    const auto d = max_relative_difference(*ma, *mb, skip);
    fmt::print("2 x b vs 1 x 2b, 20 steps: {} largest relative difference {:.3g} per tensor ({}), {:.3g} per element\n",
               name, d.tensor, d.worst, d.element);
  }
}

TEST_CASE("2 processes at batch b with --negatives global take the first step of 1 process at batch 2b with "
          "--negatives minibatch", "[distributed]") {
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
    for (auto [name, ma, mb] : {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", a->G.get(), b->G.get()},
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

TEST_CASE("2 processes end 5 steps with the same parameters whether the gradient all-reduce overlaps backward "
          "or follows it (--no-overlap)", "[distributed]") {
  TempDir dir("dist_overlap");
  auto run = [&](const std::string& name, const std::vector<std::string>& extra) {
    auto args = tiny({"--steps", "5", "--log-every", "5", "--sample-every", "1000", "--loss", "graph", "--batch-size",
                      "2", "--run", (dir.path / name).string()});
    args.insert(args.end(), extra.begin(), extra.end());
    auto pids = spawn_ranks(args, dir.path / (name + ".out"));
    for (int r = 0; r < 2; ++r) {
      INFO(name << " rank " << r << ":\n" << read_text(dir.path / (name + ".out" + std::to_string(r))));
      REQUIRE(wait_exit(pids[static_cast<size_t>(r)]) == 0);
    }
    return load(dir.path / name / "ckpt.safetensors");
  };
  auto overlapped = run("overlapped", {});
  auto after = run("after", {"--no-overlap"});
  REQUIRE(overlapped->step() == 5);
  // With 2 ranks each element's all-reduce is one addition, the same in any bucket layout: the
  // two runs agree bit for bit, and log the same losses and bytes.
  for (auto [name, ma, mb] : {std::tuple<const char*, torch::nn::Module*, torch::nn::Module*>{"G", overlapped->G.get(), after->G.get()},
                              {"D", overlapped->D.get(), after->D.get()},
                              {"F", overlapped->F.module.get(), after->F.module.get()}}) {
    const auto d = max_relative_difference(*ma, *mb);
    INFO(name << ": " << d.worst << " " << d.tensor);
    CHECK(d.tensor == 0);
  }
  const auto lo = report::read_log(dir.path / "overlapped" / "log.jsonl"), la = report::read_log(dir.path / "after" / "log.jsonl");
  REQUIRE(lo.size() == 1);
  REQUIRE(la.size() == 1);
  for (const char* k : {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "bytes_all_reduced"}) CHECK(lo[0].at(k) == la[0].at(k));
  // The control: another learning rate changes the parameters, so the equality is not vacuous.
  auto other = run("other", {"--lr", "0.001"});
  CHECK(max_relative_difference(*overlapped->G, *other->G).tensor > 1e-3);
}

TEST_CASE("kill -9 of rank 1: rank 0 stops naming it within --dist-timeout, and 2 processes resume the checkpoint",
          "[distributed]") {
  TempDir dir("dist_kill");
  const fs::path run = dir.path / "run", straight = dir.path / "straight";
  const std::vector<std::string> common = {"--steps", "40", "--log-every", "1", "--sample-every", "1000",
                                           "--checkpoint-every", "5", "--dist-timeout", "20"};
  auto args = tiny(common);
  args.insert(args.end(), {"--run", run.string()});
  auto pids = spawn_ranks(args, dir.path / "run.out");
  const auto start = clock_type::now();
  while (last_printed_step(dir.path / "run.out0") < 12 && seconds_since(start) < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(last_printed_step(dir.path / "run.out0") >= 12);
  ::kill(pids[1], SIGKILL);
  const auto killed = clock_type::now();
  CHECK(wait_exit(pids[1]) == -SIGKILL);
  const int code = wait_exit(pids[0], 120);
  const double took = seconds_since(killed);
  const auto out0 = read_text(dir.path / "run.out0");
  INFO(out0);
  CHECK(code != 0);
  CHECK_THAT(out0, Catch::Contains("lost rank(s) 1"));
  CHECK(took < 20);
  fmt::print("kill -9 of rank 1 at step {}: rank 0 exited {} after {:.1f} s\n", last_printed_step(dir.path / "run.out0"),
             code, took);
  // No torn checkpoint: the last one loads completely.
  CHECK_FALSE(fs::exists(run / "ckpt.safetensors.tmp"));
  const int64_t saved = loadable_checkpoint_step(run / "ckpt.safetensors");
  CHECK(saved >= 10);
  CHECK(saved % 5 == 0);

  // 2 processes --resume to the end, and equal an uninterrupted 2-process run bit for bit.
  auto resumed = args;
  resumed.push_back("--resume");
  pids = spawn_ranks(resumed, dir.path / "resume.out");
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << ":\n" << read_text(dir.path / ("resume.out" + std::to_string(r))));
    REQUIRE(wait_exit(pids[static_cast<size_t>(r)]) == 0);
  }
  CHECK_THAT(read_text(dir.path / "resume.out0"), Catch::Contains(fmt::format("at step {}", saved)));
  auto ref = tiny(common);
  ref.insert(ref.end(), {"--run", straight.string()});
  pids = spawn_ranks(ref, dir.path / "straight.out");
  for (auto pid : pids) REQUIRE(wait_exit(pid) == 0);
  auto a = load(straight / "ckpt.safetensors"), b = load(run / "ckpt.safetensors");
  REQUIRE(b->step() == 40);
  CHECK(same_state(*a->G, *b->G));
  CHECK(same_state(*a->D, *b->D));
  CHECK(same_state(*a->F.module, *b->F.module));
  CHECK(report::read_log(run / "log.jsonl").size() == 40);
}

TEST_CASE("Bad torchrun variables, an unreachable master and ranks with different options are refused by name",
          "[distributed]") {
  TempDir dir("dist_bad");
  int index = 0;
  // One rank with `env`; it must fail within `timeout_s`, printing every phrase, training nothing.
  auto refused = [&](const std::vector<std::string>& env, const std::vector<std::string>& phrases,
                     const std::vector<std::string>& extra = {}, double timeout_s = 60) {
    const fs::path run = dir.path / fmt::format("run{}", index), out = dir.path / fmt::format("out{}", index);
    ++index;
    auto args = tiny({"--steps", "2", "--run", run.string()});
    args.insert(args.end(), extra.begin(), extra.end());
    const auto start = clock_type::now();
    const int code = wait_exit(spawn(args, env, out), timeout_s + 30);
    const auto text = read_text(out);
    INFO(text);
    CHECK(code != 0);
    CHECK(seconds_since(start) < timeout_s);
    for (const auto& p : phrases) CHECK_THAT(text, Catch::Contains(p));
    CHECK_FALSE(fs::exists(run / "ckpt.safetensors"));
  };
  for (const auto& c : refused_torchrun_env()) refused(c.env, {c.phrase});
  refused({"RANK=0", "WORLD_SIZE=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"}, {"--dist-timeout must be at least 1"},
          {"--dist-timeout", "0"});
  // Rank 0 alone: its group never forms, and it stops within the timeout (plus the watchdog's 5 s).
  refused({"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", free_port())},
          {"rank 0: the process group of 2 ranks did not form within"}, {"--dist-timeout", "3"}, 15);
  const int closed = free_port();
  refused({"RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", closed)},
          {fmt::format("cannot reach the master at 127.0.0.1:{} within --dist-timeout 3 s", closed)},
          {"--dist-timeout", "3"}, 30);

  // Different options: both ranks stop, naming rank 1, before anything is written.
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    auto args = tiny({"--steps", "2", "--run", (dir.path / "mixed").string(), "--lr", r == 0 ? "0.0002" : "0.0003"});
    pids.push_back(spawn(args, torchrun_env(r, 2, port), dir.path / fmt::format("mixed{}", r)));
  }
  for (int r = 0; r < 2; ++r) {
    CHECK(wait_exit(pids[static_cast<size_t>(r)], 60) != 0);
    INFO(read_text(dir.path / fmt::format("mixed{}", r)));
    CHECK_THAT(read_text(dir.path / fmt::format("mixed{}", r)),
               Catch::Contains("started with different options: rank(s) 1 differ from rank 0"));
  }
  CHECK_FALSE(fs::exists(dir.path / "mixed" / "log.jsonl"));
}

TEST_CASE("launch --nproc-per-node 2 -- train ... leaves one run folder, and so does the same run started by hand",
          "[distributed]") {
  TempDir dir("dist_launch");
  const std::vector<std::string> command = {"train", "--steps", "20", "--synthetic-size", "32",
                                            "--ngf", "8", "--ndf", "8", "--n-blocks", "1"};
  const fs::path launched = dir.path / "launched", by_hand = dir.path / "by_hand";
  fs::create_directories(launched);
  fs::create_directories(by_hand);
  std::vector<std::string> args = {"launch", "--nproc-per-node", "2", "--"};
  args.insert(args.end(), command.begin(), command.end());
  const int code = wait_exit(spawn(args, {}, dir.path / "launch.out", launched));
  INFO(read_text(dir.path / "launch.out"));
  REQUIRE(code == 0);
  auto pids = spawn_ranks(command, dir.path / "by_hand.out", by_hand);
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << ":\n" << read_text(dir.path / ("by_hand.out" + std::to_string(r))));
    REQUIRE(wait_exit(pids[static_cast<size_t>(r)]) == 0);
  }
  for (const auto& cwd : {launched, by_hand}) {
    INFO(cwd.string());
    std::vector<fs::path> entries, runs;
    for (const auto& e : fs::directory_iterator(cwd)) entries.push_back(e.path());
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].filename() == "runs");
    for (const auto& e : fs::directory_iterator(cwd / "runs")) runs.push_back(e.path());
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].filename() == "demo");
    for (const char* f : {"ckpt.safetensors", "log.jsonl", "index.html", "config.txt"}) CHECK(fs::exists(runs[0] / f));
    CHECK(loadable_checkpoint_step(runs[0] / "ckpt.safetensors") == 20);
  }
  // Both ways run the same computation.
  auto a = load(launched / "runs" / "demo" / "ckpt.safetensors"), b = load(by_hand / "runs" / "demo" / "ckpt.safetensors");
  CHECK(same_state(*a->G, *b->G));
  CHECK(same_state(*a->F.module, *b->F.module));
}
