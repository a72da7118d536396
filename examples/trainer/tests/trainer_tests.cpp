// Tests of the example trainer: data, networks, training, checkpoints, translate, evaluate, VGG16 loading.
#define CATCH_CONFIG_MAIN
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "commands.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace trainer;
namespace fs = std::filesystem;

namespace {

/// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("patchgcl_trainer_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// The smallest configuration that still exercises every part of a CUT step.
TrainConfig tiny_config(LossKind loss = LossKind::kGraph) {
  TrainConfig c;
  c.data.synthetic_size = c.data.load_size = c.data.crop_size = 32;
  c.data.synthetic_count = 16;
  c.loss = loss;
  c.ngf = 8;
  c.n_blocks = 2;
  c.ndf = 8;
  c.num_patches = 64;
  c.steps = 40;
  c.seed = 7;
  c.data.seed = c.seed;
  return c;
}

bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

void write_garbage(const fs::path& path) { std::ofstream(path) << "this is not an image"; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Keeps the first `bytes` bytes of `from` in `to` (a file cut short, as by a crashed copy).
void write_truncated(const fs::path& from, const fs::path& to, size_t bytes) {
  std::string data = read_text(from);
  REQUIRE(bytes < data.size());
  std::ofstream(to, std::ios::binary).write(data.data(), static_cast<std::streamsize>(bytes));
}

/// Buffers and parameters of `a` and `b` are bit-for-bit equal.
bool same_state(torch::nn::Module& a, torch::nn::Module& b) {
  if (!same_parameters(a, b)) return false;
  auto ba = a.named_buffers(), bb = b.named_buffers();
  if (ba.size() != bb.size()) return false;
  for (const auto& x : ba)
    if (!torch::equal(x.value(), bb[x.key()])) return false;
  return true;
}

/// The example trainer executable (CMake passes its path), run with one thread so that two runs of
/// the same command compute the same bits.
const std::string kTrainerBinary = PATCHGCL_TRAINER_BINARY;

/// fork + execve of `kTrainerBinary --threads 1 ARGS...`, stdout and stderr to `log`.
/// Returns the child's pid without waiting for it.
pid_t spawn_trainer(const std::vector<std::string>& args, const fs::path& log) {
  // Everything the child needs is built before fork(): between fork and exec a child of a
  // multi-threaded process may only call async-signal-safe functions (open, dup2, execve, _exit).
  std::vector<std::string> argv_s = {kTrainerBinary, "--threads", "1"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = {"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE", "MKL_NUM_THREADS=1"};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OMP_", 4) != 0 && std::strncmp(*e, "MKL_NUM_THREADS=", 16) != 0) env_s.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

/// Runs the trainer to its end: exit status (-signal if killed) and everything it printed.
struct Finished {
  int status;
  std::string output;
};
Finished run_trainer(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = spawn_trainer(args, log);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status), read_text(log)};
}

/// Last "step" of a log.jsonl, 0 when it has none (it may end in a half-written line).
int64_t last_logged_step(const fs::path& log) {
  int64_t step = 0;
  for (const auto& r : report::read_log(log))
    if (r.count("step")) step = static_cast<int64_t>(r.at("step"));
  return step;
}

/// Last "step N/" progress line a trainer process printed to `output`, 0 before its first one.
/// Unlike log.jsonl (which holds the killed predecessor's lines until the resumed run truncates
/// it) this is the live process's own progress.
int64_t last_printed_step(const fs::path& output) {
  const std::string text = read_text(output);
  const auto at = text.rfind("step ");
  return at == std::string::npos ? 0 : std::strtoll(text.c_str() + at + 5, nullptr, 10);
}

/// Step of the checkpoint at `path`, loaded completely into a Trainer of its own configuration
/// (throws if it does not load); -1 when there is no checkpoint.
int64_t loadable_checkpoint_step(const fs::path& path) {
  if (!fs::exists(path)) return -1;
  Trainer t(Trainer::read_config(path), torch::kCPU);
  t.load(path);
  return t.step();
}

}  // namespace

TEST_CASE("Folder datasets load, skip unreadable images and augment reproducibly", "[data]") {
  torch::set_num_threads(1);
  TempDir dir("data");
  write_synthetic(dir.path, 6, 40, 3);
  // Unreadable entries of every kind, each skipped with a warning and counted:
  write_garbage(dir.path / "trainA" / "broken.jpg");                                   // text named .jpg
  write_garbage(dir.path / "trainA" / "text.png");                                     // text named .png
  std::ofstream(dir.path / "trainA" / "empty.png");                                    // zero bytes
  fs::create_directories(dir.path / "trainA" / "folder.jpg");                          // a directory
  write_truncated(dir.path / "trainA" / "00000.png", dir.path / "trainA" / "half.png",  // a PNG cut in half
                  fs::file_size(dir.path / "trainA" / "00000.png") / 2);
  write_truncated(dir.path / "trainB" / "00000.png", dir.path / "trainB" / "header.png", 40);  // header only
  DataOptions o;
  o.root = dir.path.string();
  o.load_size = 40;
  o.crop_size = 32;
  o.seed = 11;
  std::ostringstream warnings;
  std::optional<UnpairedDataset> loaded;
  {
    struct CaptureCerr {  // restores std::cerr even if the constructor throws
      std::streambuf* old;
      ~CaptureCerr() { std::cerr.rdbuf(old); }
    } capture{std::cerr.rdbuf(warnings.rdbuf())};
    loaded.emplace(o);
  }
  const UnpairedDataset& data = *loaded;
  CHECK(data.skipped() == 6);
  for (const char* name : {"broken.jpg", "text.png", "half.png", "header.png"})
    CHECK_THAT(warnings.str(), Catch::Contains(std::string("skipping unreadable image ")) && Catch::Contains(name));
  CHECK_THAT(warnings.str(), Catch::Contains("empty.png (empty file (0 bytes))"));
  CHECK_THAT(warnings.str(), Catch::Contains("folder.jpg (a directory, not an image file)"));
  CHECK(data.domain_A().size() == 6);
  CHECK(data.domain_B().size() == 6);
  CHECK(data.size() == 6);

  auto b = data.batch(5, 3);
  CHECK(b.real_A.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(b.real_B.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(b.real_A.min().item<float>() >= -1.0f);
  CHECK(b.real_A.max().item<float>() <= 1.0f);

  SECTION("a step's batch depends only on (seed, step)") {
    auto again = UnpairedDataset(o).batch(5, 3);
    CHECK(torch::equal(b.real_A, again.real_A));
    CHECK(torch::equal(b.real_B, again.real_B));
    CHECK_FALSE(torch::equal(b.real_A, data.batch(6, 3).real_A));
  }
  SECTION("an epoch visits every A image once") {
    std::set<int64_t> seen;
    DataOptions exact = o;
    exact.load_size = exact.crop_size = 40;
    exact.flip = false;
    UnpairedDataset d(exact);
    for (int64_t step = 0; step < 6; ++step) {
      auto a = d.batch(step, 1).real_A[0];
      for (size_t i = 0; i < d.domain_A().size(); ++i)
        if (torch::equal(a, to_tensor(d.domain_A()[i]))) seen.insert(static_cast<int64_t>(i));
    }
    CHECK(seen.size() == 6);
  }
  SECTION("a crop of the full size is the image or its mirror") {
    DataOptions full = o;
    full.load_size = full.crop_size = 40;
    UnpairedDataset d(full);
    int mirrored = 0;
    for (int64_t step = 0; step < 12; ++step) {
      auto a = d.batch(step, 1).real_A[0];
      bool found = false;
      for (const auto& img : d.domain_A()) {
        auto t = to_tensor(img);
        if (torch::equal(a, t)) found = true;
        if (torch::equal(a, t.flip({2}))) found = true, ++mirrored;
      }
      CHECK(found);
    }
    CHECK(mirrored > 0);
    CHECK(mirrored < 12);
  }
}

TEST_CASE("Dataset errors name the problem", "[data]") {
  TempDir dir("errors");
  DataOptions o;
  o.root = (dir.path / "missing").string();
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("does not exist"));
  o.root = dir.path.string();
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("trainA"));
  fs::create_directories(dir.path / "trainA");
  fs::create_directories(dir.path / "trainB");
  write_garbage(dir.path / "trainA" / "x.png");
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("no readable images") && Catch::Contains("1 skipped"));
  o.crop_size = 30;
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("multiple of 4"));
}

TEST_CASE("Single-image mode crops at several scales", "[data]") {
  TempDir dir("single");
  fs::create_directories(dir.path / "trainA");
  fs::create_directories(dir.path / "trainB");
  // A horizontal ramp: the spread of values inside a crop grows with the crop's scale.
  Image ramp;
  ramp.width = 200, ramp.height = 120;
  for (int y = 0; y < ramp.height; ++y)
    for (int x = 0; x < ramp.width; ++x)
      for (int k = 0; k < 3; ++k) ramp.pixels.push_back(static_cast<uint8_t>(x * 255 / 199));
  write_png(dir.path / "trainA" / "a.png", ramp);
  write_png(dir.path / "trainB" / "b.png", ramp);
  DataOptions o;
  o.root = dir.path.string();
  o.single_image = true;
  o.crop_size = 32;
  o.flip = false;
  UnpairedDataset data(o);
  double lo = 1e9, hi = 0;
  for (int64_t step = 0; step < 20; ++step) {
    auto a = data.batch(step, 1).real_A;
    CHECK(a.sizes() == torch::IntArrayRef({1, 3, 32, 32}));
    double spread = (a.max() - a.min()).item<double>();
    lo = std::min(lo, spread), hi = std::max(hi, spread);
  }
  CHECK(hi > 2.0 * lo);
}

TEST_CASE("Synthetic domains share the mask and differ only by stripes", "[data]") {
  auto spec = synthetic::make_spec(synthetic::Split::kTest, Domain::kA, 3, 64, 0);
  auto a = to_tensor(synthetic::render(spec, Domain::kA, 64));
  auto b = to_tensor(synthetic::render(spec, Domain::kB, 64));
  auto m = synthetic::mask(spec, 64);
  CHECK(evaluation::iou(evaluation::shape_mask(a), m) > 0.95);
  CHECK(evaluation::iou(evaluation::shape_mask(b), m) > 0.95);
  auto interior = evaluation::erode(m, 2);
  CHECK(evaluation::gradient_energy(a, interior) < 1e-3);
  CHECK(evaluation::gradient_energy(b, interior) > 0.05);
  // Train split is unpaired: A_i and B_i are different shapes in general.
  int differ = 0;
  for (int i = 0; i < 10; ++i) {
    auto sa = synthetic::make_spec(synthetic::Split::kTrain, Domain::kA, i, 64, 0);
    auto sb = synthetic::make_spec(synthetic::Split::kTrain, Domain::kB, i, 64, 0);
    differ += sa.cx != sb.cx;
  }
  CHECK(differ >= 9);
}

TEST_CASE("Upsample equals CUT's transposed-convolution definition", "[networks]") {
  namespace F = torch::nn::functional;
  auto x = torch::randn({2, 3, 5, 7});
  auto f = torch::tensor({1.0, 3.0, 3.0, 1.0});
  auto f2 = f.unsqueeze(1) * f.unsqueeze(0);
  auto filt = (f2 / f2.sum() * 4.0).expand({3, 1, 4, 4}).contiguous();
  auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  auto ref = F::conv_transpose2d(padded, filt, F::ConvTranspose2dFuncOptions().stride(2).padding(2).groups(3));
  using torch::indexing::None;
  using torch::indexing::Slice;
  ref = ref.index({Slice(), Slice(), Slice(1, None), Slice(1, None)});
  ref = ref.index({Slice(), Slice(), Slice(None, -1), Slice(None, -1)});  // CUT: even filter -> trim
  Upsample up(3);
  CHECK(torch::allclose(up->forward(x), ref, 1e-5, 1e-6));
}

TEST_CASE("The generator keeps the image size and reports its encoder channels", "[networks]") {
  ResnetGenerator g(GeneratorOptions().ngf(8).n_blocks(3));
  auto x = torch::randn({2, 3, 32, 48});
  CHECK(g->forward(x).sizes() == torch::IntArrayRef({2, 3, 32, 48}));
  auto layers = g->default_nce_layers();
  CHECK(layers == std::vector<int64_t>{0, 4, 8, 12, 14});
  auto feats = g->encode(x, layers);
  auto channels = g->channels(layers);
  REQUIRE(feats.size() == layers.size());
  for (size_t i = 0; i < feats.size(); ++i) CHECK(feats[i].size(1) == channels[i]);
  CHECK(feats[0].size(2) == 38);  // reflection-padded input
  CHECK(feats[2].size(2) == 16);  // before the second Downsample
  PatchDiscriminator d(DiscriminatorOptions().ndf(8));
  CHECK(d->forward(x).size(1) == 1);
}

TEST_CASE("A few training steps lower the contrastive loss on a tiny problem", "[train]") {
  torch::set_num_threads(1);
  auto loss = GENERATE(LossKind::kGraph, LossKind::kPatchNCE, LossKind::kPUT);
  auto config = tiny_config(loss);
  config.steps = 30;
  UnpairedDataset data(config.data);
  Trainer t(config, torch::kCPU);
  double first = 0, last = 0;
  for (int64_t s = 0; s < config.steps; ++s) {
    auto l = t.train_step(data.batch(s, 2));
    REQUIRE(std::isfinite(l.G));
    if (s < 5) first += l.NCE + l.NCE_Y;
    if (s >= config.steps - 5) last += l.NCE + l.NCE_Y;
  }
  INFO("loss " << to_string(loss) << ": first 5 steps " << first / 5 << ", last 5 steps " << last / 5);
  CHECK(last < 0.9 * first);
}

TEST_CASE("Patch sampling is clamped to the smallest feature map, as CUT's min(num_patches, H*W)", "[train]") {
  auto config = tiny_config(LossKind::kPatchNCE);
  config.data.synthetic_size = 24;  // bottleneck 6x6 = 36 locations
  config.num_patches = 256;
  Trainer t(config, torch::kCPU);
  CHECK(t.num_patches() == 36);
  UnpairedDataset data(config.data);
  CHECK(std::isfinite(t.train_step(data.batch(0, 1)).G));
}

TEST_CASE("Checkpoints round-trip and resume continues bit-for-bit", "[checkpoint]") {
  torch::set_num_threads(1);
  TempDir dir("ckpt");
  auto config = tiny_config(LossKind::kGraph);
  config.steps = 6;
  UnpairedDataset data(config.data);

  Trainer straight(config, torch::kCPU);
  for (int64_t s = 0; s < 6; ++s) straight.train_step(data.batch(s, 1));

  {
    Trainer first_half(config, torch::kCPU);
    for (int64_t s = 0; s < 3; ++s) first_half.train_step(data.batch(s, 1));
    first_half.save(dir.path / "ckpt.pt");
    CHECK_FALSE(fs::exists(dir.path / "ckpt.pt.tmp"));
    Trainer reloaded(config, torch::kCPU);
    reloaded.load(dir.path / "ckpt.pt");
    CHECK(reloaded.step() == 3);
    CHECK(same_parameters(*reloaded.G, *first_half.G));
    CHECK(same_parameters(*reloaded.F.module, *first_half.F.module));
  }
  torch::manual_seed(12345);  // resuming must not depend on the process's RNG history
  Trainer resumed(config, torch::kCPU);
  resumed.load(dir.path / "ckpt.pt");
  while (resumed.step() < 6) resumed.train_step(data.batch(resumed.step(), 1));
  CHECK(same_parameters(*resumed.G, *straight.G));
  CHECK(same_parameters(*resumed.D, *straight.D));
  CHECK(same_parameters(*resumed.F.module, *straight.F.module));

  SECTION("a checkpoint of other channels is refused") {
    auto other = config;
    other.ngf = 16;
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(t.load(dir.path / "ckpt.pt"), Catch::Contains("ngf: 8 (checkpoint) vs 16"));
  }
  SECTION("a checkpoint of another loss is refused") {
    auto other = config;
    other.loss = LossKind::kPatchNCE;  // other heads: a shape mismatch if the check were missing
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(t.load(dir.path / "ckpt.pt"), Catch::Contains("loss: graph (checkpoint) vs patchnce"));
  }
  SECTION("a truncated checkpoint is named, not a zip error") {
    write_truncated(dir.path / "ckpt.pt", dir.path / "torn.pt", fs::file_size(dir.path / "ckpt.pt") / 2);
    Trainer t(config, torch::kCPU);
    CHECK_THROWS_WITH(t.load(dir.path / "torn.pt"), Catch::Contains("torn.pt' cannot be read (truncated"));
  }
}

TEST_CASE("train writes the run folder and resumes it exactly", "[train]") {
  torch::set_num_threads(1);
  TempDir dir("run");
  auto config = tiny_config(LossKind::kPatchNCE);
  config.steps = 8;
  RunOptions run;
  run.quiet = true;
  run.log_every = 2;
  run.sample_every = 4;
  run.checkpoint_every = 4;
  run.run_dir = dir.path / "straight";
  auto straight = train(config, run, torch::kCPU);
  CHECK(report::read_log(run.run_dir / "log.jsonl").size() == 4);
  CHECK(fs::exists(run.run_dir / "samples" / "step_000008.png"));
  std::ifstream html(run.run_dir / "index.html");
  std::string text((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("samples/step_000008.png") != std::string::npos);
  CHECK_THROWS_WITH(train(config, run, torch::kCPU), Catch::Contains("--resume"));

  // Interrupted after the checkpoint at step 4 (steps 5-6 logged, then lost), then resumed.
  run.run_dir = dir.path / "interrupted";
  {
    auto cut = config;
    Trainer t(cut, torch::kCPU);
    UnpairedDataset data(cut.data);
    fs::create_directories(run.run_dir);
    for (int64_t s = 0; s < 4; ++s) t.train_step(data.batch(s, cut.batch_size));
    t.save(run.run_dir / "ckpt.pt");
    std::ofstream(run.run_dir / "log.jsonl") << "{\"step\":2}\n{\"step\":4}\n{\"step\":6}\n";
  }
  run.resume = true;
  auto resumed = train(config, run, torch::kCPU);
  CHECK(same_parameters(*resumed->G, *straight->G));
  auto log = report::read_log(run.run_dir / "log.jsonl");
  REQUIRE(log.size() == 4);
  CHECK(log[2]["step"] == 6);
  CHECK(log[2].count("loss_NCE") == 1);  // the stale step-6 line was replaced
}

TEST_CASE("translate converts a folder and skips unreadable files", "[translate]") {
  torch::set_num_threads(1);
  TempDir dir("translate");
  fs::create_directories(dir.path / "in");
  write_png(dir.path / "in" / "one.png", synthetic::sample(synthetic::Split::kTest, Domain::kA, 0, 30, 0));
  write_png(dir.path / "in" / "two.png", synthetic::sample(synthetic::Split::kTest, Domain::kA, 1, 64, 0));
  write_garbage(dir.path / "in" / "three.jpg");
  auto config = tiny_config();
  config.steps = 0;
  Trainer t(config, torch::kCPU);
  t.save(dir.path / "ckpt.pt");
  auto loaded = load_checkpoint(dir.path / "ckpt.pt", torch::kCPU);
  int skipped = 0;
  CHECK(translate(*loaded, dir.path / "in", dir.path / "out", 0, &skipped) == 2);
  CHECK(skipped == 1);
  auto one = read_image(dir.path / "out" / "one.png");
  CHECK(one.width == 32);  // 30 rounded to the generator's stride of 4
  CHECK(read_image(dir.path / "out" / "two.png").width == 64);
  // The loaded generator is the saved one.
  auto x = to_tensor(synthetic::sample(synthetic::Split::kTest, Domain::kA, 2, 32, 0)).unsqueeze(0);
  CHECK(torch::equal(loaded->translate(x), t.translate(x)));
  CHECK_THROWS_WITH(translate(*loaded, dir.path / "nope", dir.path / "out", 0), Catch::Contains("does not exist"));
}

TEST_CASE("The evaluation separates identity, ground truth and blank translations", "[evaluate]") {
  const int size = 48, count = 12;
  const uint64_t seed = 5;
  SECTION("identity keeps the structure but has no texture") {
    auto s = evaluation::evaluate([](const torch::Tensor& x) { return x; }, count, size, seed);
    CHECK(s.structure == Approx(1.0));
    CHECK(s.texture < 0.02);
    CHECK(s.score < 0.02);
  }
  SECTION("the ground-truth B image scores 1 on both") {
    int i = 0;
    auto truth = [&](const torch::Tensor&) {
      auto spec = synthetic::make_spec(synthetic::Split::kTest, Domain::kA, i++, size, seed);
      return to_tensor(synthetic::render(spec, Domain::kB, size)).unsqueeze(0);
    };
    auto s = evaluation::evaluate(truth, count, size, seed);
    CHECK(s.structure > 0.95);
    CHECK(s.texture == Approx(1.0));
  }
  SECTION("a blank background has no structure; a grey image covers everything") {
    auto bg = torch::tensor({synthetic::kBackground[0], synthetic::kBackground[1], synthetic::kBackground[2]})
                  .view({1, 3, 1, 1}) * 2 - 1;
    auto blank = evaluation::evaluate([&](const torch::Tensor& x) { return bg.expand_as(x); }, count, size, seed);
    CHECK(blank.structure == Approx(0.0));
    auto grey = evaluation::evaluate([](const torch::Tensor& x) { return torch::zeros_like(x); }, count, size, seed);
    CHECK(grey.structure < 0.4);
    CHECK(grey.structure > 0.0);
  }
  SECTION("hand-made masks") {
    auto a = torch::zeros({4, 4}, torch::kBool), b = torch::zeros({4, 4}, torch::kBool);
    a.index_put_({torch::indexing::Slice(0, 2)}, true);  // 8 pixels
    b.index_put_({torch::indexing::Slice(1, 3)}, true);  // 8 pixels, 4 shared
    CHECK(evaluation::iou(a, b) == Approx(4.0 / 12.0));
    CHECK(evaluation::erode(torch::ones({5, 5}, torch::kBool), 1).sum().item<int64_t>() == 25);
    auto square = torch::zeros({5, 5}, torch::kBool);
    square.index_put_({torch::indexing::Slice(1, 4), torch::indexing::Slice(1, 4)}, true);
    CHECK(evaluation::erode(square, 1).sum().item<int64_t>() == 1);
  }
}

TEST_CASE("VGG16 weights load from a pickled tensor dict", "[vgg16]") {
  TempDir dir("vgg");
  torch::manual_seed(3);
  c10::Dict<std::string, torch::Tensor> dict;
  VGG16Features reference;
  for (const auto& p : reference->named_parameters()) dict.insert("features." + p.key(), torch::randn_like(p.value()));
  auto write = [&](const c10::Dict<std::string, torch::Tensor>& d, const fs::path& path) {
    auto bytes = torch::pickle_save(c10::IValue(d));
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  write(dict, dir.path / "vgg.pt");
  VGG16Features vgg;
  vgg->load_weights(dir.path / "vgg.pt");
  for (const auto& p : vgg->named_parameters()) CHECK(torch::equal(p.value(), dict.at("features." + p.key())));
  CHECK_FALSE(vgg->parameters()[0].requires_grad());

  auto feats = vgg->forward(torch::zeros({1, 3, 32, 32}), VGG16FeaturesImpl::paper_layers());
  REQUIRE(feats.size() == 3);
  CHECK(feats[0].sizes() == torch::IntArrayRef({1, 256, 8, 8}));
  CHECK(feats[1].sizes() == torch::IntArrayRef({1, 512, 4, 4}));
  CHECK(feats[2].sizes() == torch::IntArrayRef({1, 512, 4, 4}));
  // relu3_1 by hand from the loaded weights: conv1_1 .. conv3_1 with pooling, on the normalised input.
  {
    auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
    auto h = ((x + 1) * 0.5 - torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1})) /
             torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
    auto conv = [&](const torch::Tensor& in, int idx) {
      auto k = std::to_string(idx);
      return torch::relu(torch::conv2d(in, dict.at("features." + k + ".weight"), dict.at("features." + k + ".bias"), 1, 1));
    };
    h = torch::max_pool2d(conv(conv(h, 0), 2), 2, 2);
    h = torch::max_pool2d(conv(conv(h, 5), 7), 2, 2);
    h = conv(h, 10);
    CHECK(torch::allclose(vgg->forward(x, {11})[0], h, 1e-4, 1e-5));
  }

  SECTION("a missing or mis-shaped tensor is named") {
    auto missing = dict.copy();
    CHECK(missing.erase("features.21.bias") == 1);
    write(missing, dir.path / "missing.pt");
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "missing.pt"), Catch::Contains("21.bias"));
    auto wrong = dict.copy();
    wrong.insert_or_assign("features.0.weight", torch::zeros({64, 3, 5, 5}));
    write(wrong, dir.path / "wrong.pt");
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "wrong.pt"), Catch::Contains("[64,3,5,5]"));
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "none.pt"), Catch::Contains("cannot open"));
  }
}

TEST_CASE("Configurations round-trip through their text form", "[checkpoint]") {
  auto c = tiny_config(LossKind::kPUT);
  c.features = FeatureKind::kVGG16;
  c.lr = 1.5e-4;
  auto back = TrainConfig::deserialize(c.serialize());
  CHECK(back.differences(c).empty());
  CHECK(back.lambda() == Approx(0.1));
  CHECK(back.loss == LossKind::kPUT);
  CHECK(c.lr_factor(0) == 1.0);
  CHECK(c.lr_factor(c.steps - 1) < 0.1);
  auto r = report::parse_record("{\"step\":12,\"loss_D\":0.25,\"name\":\"x\"}");
  CHECK(r["step"] == 12);
  CHECK(r["loss_D"] == Approx(0.25));
  CHECK(r.count("name") == 0);
}

TEST_CASE("Bad command lines fail before training, naming the option, the expected and the given value", "[cli]") {
  TempDir dir("cli");
  // A tiny valid command; each case replaces or adds options.
  const std::vector<std::pair<std::string, std::string>> base = {
      {"--synthetic-size", "24"}, {"--synthetic-count", "4"}, {"--ngf", "4"}, {"--ndf", "4"}, {"--n-blocks", "1"},
      {"--num-patches", "16"}, {"--steps", "2"}};
  int run_index = 0;
  auto command = [&](const std::vector<std::pair<std::string, std::string>>& changes, const fs::path& run_dir) {
    auto options = base;
    for (const auto& [key, value] : changes) {
      auto it = std::find_if(options.begin(), options.end(), [&](const auto& o) { return o.first == key; });
      if (it != options.end()) it->second = value;
      else options.emplace_back(key, value);
    }
    std::vector<std::string> args = {"train", "--run", run_dir.string()};
    for (const auto& [key, value] : options) {
      args.push_back(key);
      if (!value.empty()) args.push_back(value);  // "" marks a flag
    }
    return args;
  };
  // Runs a command that must fail before training: non-zero exit, every phrase in the message,
  // and nothing trained (no checkpoint, no log, no progress line).
  auto expect_refused = [&](const std::vector<std::pair<std::string, std::string>>& changes,
                            const std::vector<std::string>& phrases, fs::path run_dir = {}) {
    if (run_dir.empty()) run_dir = dir.path / ("run" + std::to_string(run_index));
    auto args = command(changes, run_dir);
    auto result = run_trainer(args, dir.path / ("out" + std::to_string(run_index++)));
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    INFO("patchgcl-trainer" << cmd << "\n" << result.output);
    CHECK(result.status != 0);
    for (const auto& phrase : phrases) CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_FALSE(fs::exists(run_dir / "ckpt.pt"));
    CHECK_FALSE(fs::exists(run_dir / "log.jsonl"));
    CHECK_THAT(result.output, !Catch::Contains("step 1/"));
  };

  SECTION("option values") {
    expect_refused({{"--steps", "-1"}}, {"--steps must be at least 0 (got -1)"});
    expect_refused({{"--steps", "abc"}}, {"--steps", "abc"});
    expect_refused({{"--batch-size", "0"}}, {"--batch-size must be at least 1 (got 0)"});
    expect_refused({{"--lr", "0"}}, {"--lr must be a finite number > 0 (got 0)"});
    expect_refused({{"--lr", "-1e-3"}}, {"--lr must be a finite number > 0 (got -0.001)"});
    expect_refused({{"--lr", "nan"}}, {"--lr must be a finite number > 0 (got nan)"});
    expect_refused({{"--loss", "triplet"}}, {"--loss", "triplet", "graph,patchnce,put"});
    expect_refused({{"--features", "resnet"}}, {"--features", "resnet", "encoder,vgg16"});
    expect_refused({{"--num-patches", "0"}}, {"--num-patches must be at least 2 (got 0)"});
    expect_refused({{"--synthetic-size", "20"}}, {"--synthetic-size must be a multiple of 4 and at least 24", "(got 20)"});
    expect_refused({{"--synthetic-size", "30"}}, {"--synthetic-size must be a multiple of 4", "(got 30)"});
    expect_refused({{"--synthetic-count", "0"}}, {"--synthetic-count must be at least 1 (got 0)"});
    expect_refused({{"--ngf", "0"}}, {"--ngf must be at least 1 (got 0)"});
    expect_refused({{"--n-blocks", "0"}}, {"--n-blocks must be at least 1 (got 0)"});
    expect_refused({{"--ndf", "-3"}}, {"--ndf must be at least 1 (got -3)"});
    expect_refused({{"--decay-steps", "5"}}, {"--decay-steps must be at most --steps (2) (got 5)"});
    expect_refused({{"--lambda-gan", "-1"}}, {"--lambda-gan must be a finite number >= 0 (got -1)"});
    expect_refused({{"--lambda", "inf"}}, {"--lambda must be a finite number", "(got inf)"});
    expect_refused({{"--log-every", "0"}}, {"--log-every must be at least 1 (got 0)"});
    expect_refused({{"--sample-every", "0"}}, {"--sample-every must be at least 1 (got 0)"});
    expect_refused({{"--checkpoint-every", "-5"}}, {"--checkpoint-every must be at least 1 (got -5)"});
    expect_refused({{"--features", "vgg16"}}, {"--vgg-weights must be a VGG16 weight file", "(got none)"});
    expect_refused({{"--features", "vgg16"}, {"--vgg-weights", (dir.path / "nope.pt").string()}},
                   {"--vgg-weights must be an existing file", "nope.pt', which does not exist"});
  }
  SECTION("data folders") {
    const fs::path data = dir.path / "data";
    expect_refused({{"--data", (dir.path / "missing").string()}}, {"data folder '", "missing' does not exist (expected"});
    fs::create_directories(data / "trainA");
    expect_refused({{"--data", data.string()}, {"--crop-size", "24"}, {"--load-size", "24"}}, {"has no trainB/"});
    fs::create_directories(data / "trainB");
    expect_refused({{"--data", data.string()}, {"--crop-size", "24"}, {"--load-size", "24"}},
                   {"trainA' has no readable images (0 image files, 0 skipped as unreadable)"});
    write_garbage(data / "trainA" / "x.png");
    expect_refused({{"--data", data.string()}, {"--crop-size", "24"}, {"--load-size", "24"}},
                   {"warning: skipping unreadable image", "trainA' has no readable images (1 image files, 1 skipped"});
    expect_refused({{"--data", data.string()}, {"--crop-size", "30"}}, {"--crop-size must be a multiple of 4", "(got 30)"});
    expect_refused({{"--data", data.string()}, {"--crop-size", "32"}, {"--load-size", "28"}},
                   {"--load-size must be at least --crop-size (32) (got 28)"});
    expect_refused({{"--data", data.string()}, {"--single-image", ""}, {"--crop-size", "24"}, {"--min-zoom", "0"}},
                   {"--min-zoom must be in (0, 1] (got 0)"});
  }
  SECTION("unwritable run folders") {
    // Under a regular file no one, root included, can create a folder.
    std::ofstream(dir.path / "a_file") << "x";
    expect_refused({}, {"--run must be a folder this process can create files in", "a_file/run', which cannot be created"},
                   dir.path / "a_file" / "run");
    // A read-only folder stops everyone but root (tests may run as root, where it cannot be checked).
    fs::create_directories(dir.path / "readonly");
    ::chmod((dir.path / "readonly").c_str(), 0555);
    if (::geteuid() != 0) {
      expect_refused({}, {"--run must be a folder this process can create files in", "Permission denied"},
                     dir.path / "readonly" / "run");
      fs::create_directories(dir.path / "ro_run");
      ::chmod((dir.path / "ro_run").c_str(), 0555);
      expect_refused({}, {"--run must be a folder this process can create files in", "ro_run': Permission denied"},
                     dir.path / "ro_run");
      ::chmod((dir.path / "ro_run").c_str(), 0755);
    }
    ::chmod((dir.path / "readonly").c_str(), 0755);
  }
  SECTION("a run folder in use by another process") {
    fs::create_directories(dir.path / "busy");
    RunLock held(dir.path / "busy");  // as a live trainer holds it
    expect_refused({}, {"--run '", "busy' is in use by another patchgcl-trainer process"}, dir.path / "busy");
  }
  SECTION("checkpoints of another configuration, truncated or missing") {
    const fs::path run = dir.path / "ref";
    auto made = run_trainer(command({{"--steps", "0"}}, run), dir.path / "ref.out");
    INFO(made.output);
    REQUIRE(made.status == 0);
    const std::string before = read_text(run / "ckpt.pt");
    auto refused = [&](const std::vector<std::pair<std::string, std::string>>& changes, const std::string& phrase,
                       const fs::path& in = {}) {
      auto result = run_trainer(command(changes, in.empty() ? run : in), dir.path / "refused.out");
      INFO(result.output);
      CHECK(result.status != 0);
      CHECK_THAT(result.output, Catch::Contains(phrase));
      CHECK_THAT(result.output, !Catch::Contains("step 1/"));
    };
    refused({{"--steps", "0"}, {"--resume", ""}, {"--loss", "patchnce"}}, "loss: graph (checkpoint) vs patchnce (command line)");
    refused({{"--steps", "0"}, {"--resume", ""}, {"--ngf", "8"}}, "ngf: 4 (checkpoint) vs 8 (command line)");
    refused({{"--steps", "0"}}, "already holds a checkpoint; pass --resume");
    refused({{"--steps", "0"}, {"--resume", ""}}, "--resume: no checkpoint at", dir.path / "fresh");
    CHECK(read_text(run / "ckpt.pt") == before);  // refused runs leave the checkpoint alone
    fs::create_directories(dir.path / "torn");
    write_truncated(run / "ckpt.pt", dir.path / "torn" / "ckpt.pt", before.size() / 2);
    refused({{"--steps", "0"}, {"--resume", ""}}, "torn/ckpt.pt' cannot be read (truncated", dir.path / "torn");
  }
}

TEST_CASE("kill -9 at random moments, then --resume, reproduces the uninterrupted run", "[kill]") {
  // A tiny run (24x24 synthetic images, ngf = ndf = 4: ~0.1 s a step) with a checkpoint every 3
  // steps and a log line every 2, so checkpoints fall inside log windows too.
  torch::set_num_threads(1);
  TempDir dir("kill");
  const int64_t steps = 60, checkpoint_every = 3;
  const std::vector<std::string> common = {
      "train", "--synthetic-size", "24", "--synthetic-count", "8", "--ngf", "4", "--ndf", "4", "--n-blocks", "1",
      "--num-patches", "16", "--steps", std::to_string(steps), "--log-every", "2", "--sample-every", "7",
      "--checkpoint-every", std::to_string(checkpoint_every), "--seed", "5"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
  };
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("PATCHGCL_KILL_SEED")) seed = std::stoull(s);
  std::mt19937_64 rng(seed);
  std::cout << "kill test: seed " << seed << " (PATCHGCL_KILL_SEED=" << seed << " replays the kill plan)\n";
  INFO("seed " << seed);

  // 1. The reference: one uninterrupted run.
  const auto straight_start = clock::now();
  const fs::path straight = dir.path / "straight", killed = dir.path / "killed";
  auto ref = run_trainer(with({"--run", straight.string()}), dir.path / "straight.out");
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  std::cout << "kill test: uninterrupted run of " << steps << " steps took " << ms_since(straight_start) << " ms\n";

  // 2. The same command in another folder, killed with SIGKILL five times, then resumed to the end.
  // Kinds of kill, in a seeded order:
  //   startup    - at a random 0-400 ms after exec (loading, log truncation, first steps);
  //   steps      - once the process has logged 1-8 steps past the checkpoint it resumed from, plus 0-150 ms;
  //   checkpoint - once it has logged 1-4 steps past it, as soon as ckpt.pt.tmp appears: mid-write.
  // Each kill leaves at most ~12 steps of progress, so all five land before step 60.
  std::vector<std::string> plan = {"startup", "steps", "checkpoint", "steps", "checkpoint"};
  std::shuffle(plan.begin(), plan.end(), rng);
  const fs::path ckpt = killed / "ckpt.pt", tmp = killed / "ckpt.pt.tmp", log = killed / "log.jsonl";
  int kills = 0, mid_write = 0, restarts = 0;
  int64_t last_checkpoint = -1;
  std::ostringstream history;
  const auto killed_start = clock::now();
  for (const auto& kind : plan) {
    const int64_t from = std::max<int64_t>(loadable_checkpoint_step(ckpt), 0);
    // A ckpt.pt.tmp found after the kill is that process's torn write only if it is not the one a
    // predecessor left (a startup kill can land before the trainer removes it).
    auto tmp_mtime = [&] {
      struct stat st {};
      return ::stat(tmp.c_str(), &st) == 0 ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : -1LL;
    };
    const long long stale_tmp = tmp_mtime();
    auto args = fs::exists(ckpt) ? with({"--run", killed.string(), "--resume"}) : with({"--run", killed.string()});
    const auto spawned = clock::now();
    const fs::path out = dir.path / ("killed_" + std::to_string(restarts++) + ".out");
    const pid_t pid = spawn_trainer(args, out);
    int status = 0;
    bool exited = false;
    // Polls `ready` every 0.2 ms; false if the process exited first.
    auto poll_until = [&](const std::function<bool()>& ready) {
      while (!ready()) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          exited = true;
          return false;
        }
        if (ms_since(spawned) > 60000) FAIL("the trainer made no progress for 60 s");
        ::usleep(200);
      }
      return true;
    };
    if (kind == "startup") {
      const auto delay = std::uniform_int_distribution<int>(0, 400)(rng);
      poll_until([&] { return ms_since(spawned) >= delay; });
    } else if (kind == "steps") {
      const int64_t target = from + std::uniform_int_distribution<int64_t>(1, 8)(rng);
      const auto extra = std::uniform_int_distribution<int>(0, 150)(rng);
      if (poll_until([&] { return last_printed_step(out) >= target; })) {
        const auto t = clock::now();
        poll_until([&] { return ms_since(t) >= extra; });
      }
    } else {
      const int64_t after = from + std::uniform_int_distribution<int64_t>(1, 4)(rng);
      poll_until([&] { return last_printed_step(out) >= after && fs::exists(tmp); });
    }
    if (exited) {
      FAIL("the trainer exited (status " << status << ") before the planned '" << kind << "' kill; history:\n"
                                         << history.str());
    }
    const auto at_ms = ms_since(spawned);
    const int64_t logged = last_logged_step(log);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    const bool by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const bool torn = tmp_mtime() != -1 && tmp_mtime() != stale_tmp;
    // The latest complete checkpoint always loads, and never goes back in time.
    const int64_t step = loadable_checkpoint_step(ckpt);
    history << "  kill " << kills + 1 << " (" << kind << "): " << at_ms << " ms after exec, log at step " << logged
            << ", checkpoint at step " << step << (torn ? ", ckpt.pt.tmp left behind (killed mid-write)" : "")
            << (by_kill ? "" : ", but the process had already exited") << "\n";
    REQUIRE(by_kill);
    CHECK(step >= last_checkpoint);
    CHECK((step == -1 || step % checkpoint_every == 0 || step == steps));
    last_checkpoint = step;
    ++kills;
    mid_write += torn;
  }
  auto last = run_trainer(with({"--run", killed.string(), "--resume"}), dir.path / "killed_final.out");
  std::cout << "kill test: " << kills << " kills (" << mid_write << " during a checkpoint write), "
            << restarts + 1 << " processes, " << ms_since(killed_start) << " ms in all:\n"
            << history.str();
  INFO("kills:\n" << history.str() << "final run output:\n" << last.output);
  REQUIRE(last.status == 0);
  CHECK(kills >= 3);
  CHECK_FALSE(fs::exists(tmp));

  // 3. Same log, step for step: no step missing or repeated, every deterministic field equal
  // (the log prints 6 significant digits; the weights below are compared exactly).
  auto a = report::read_log(straight / "log.jsonl"), b = report::read_log(log);
  REQUIRE(a.size() == static_cast<size_t>(steps / 2));
  REQUIRE(b.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("log line " << i + 1);
    CHECK(b[i].at("step") == static_cast<double>(2 * (i + 1)));
    for (const auto& key : log_keys()) {
      if (key == "it_per_s" || key == "elapsed_s") continue;  // timings
      INFO(key);
      REQUIRE(a[i].count(key) == 1);
      REQUIRE(b[i].count(key) == 1);
      CHECK(a[i].at(key) == b[i].at(key));
    }
  }

  // 4. Same final state, bit for bit: networks, and (through one more step from each) optimiser states.
  const auto config = Trainer::read_config(straight / "ckpt.pt");
  Trainer ta(config, torch::kCPU), tb(config, torch::kCPU);
  ta.load(straight / "ckpt.pt");
  tb.load(ckpt);
  REQUIRE(ta.step() == steps);
  REQUIRE(tb.step() == steps);
  CHECK(same_state(*ta.G, *tb.G));
  CHECK(same_state(*ta.D, *tb.D));
  CHECK(same_state(*ta.F.module, *tb.F.module));
  UnpairedDataset data(config.data);
  auto batch = data.batch(steps, config.batch_size);
  ta.train_step(batch);
  tb.train_step(batch);
  CHECK(same_state(*ta.G, *tb.G));
  CHECK(same_state(*ta.D, *tb.D));
  CHECK(same_state(*ta.F.module, *tb.F.module));
}
