// What the trainer's tests share: the tiny configuration, state comparisons, files cut short or not
// images at all, the trainer binary run as a child process (with tests/support/process.hpp), and a
// check that a report is well-formed markup. Temporary folders are tests/support/temp_dir.hpp's.
#pragma once

#include "trainer/commands/evaluate.hpp"
#include "trainer/commands/explain.hpp"
#include "trainer/commands/export.hpp"
#include "trainer/commands/synth.hpp"
#include "trainer/commands/train.hpp"
#include "trainer/commands/translate.hpp"
#include "trainer/tests/checkout_paths.hpp"

#include <support/process.hpp>
#include <support/temp_dir.hpp>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace trainer_tests {

using namespace trainer;
namespace fs = std::filesystem;
using patchgcl_test::read_text;
using patchgcl_test::TempDir;

/// The smallest configuration that still exercises every part of a CUT step.
inline TrainConfig tiny_config(LossKind loss = LossKind::kGraph) {
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

/// Random weights under torchvision's names for conv1_1 .. conv4_3, and conv5_3's bias (not used:
/// accepted with torchvision's shape).
inline std::map<std::string, torch::Tensor> random_vgg16_weights() {
  torch::manual_seed(3);
  std::map<std::string, torch::Tensor> dict;
  VGG16Features reference;
  for (const auto& p : reference->named_parameters()) dict["features." + p.key()] = torch::randn_like(p.value());
  dict["features.28.bias"] = torch::randn({512});
  return dict;
}

/// `tensors` written to `path` as a VGG16 weight file (safetensors); returns `path`.
inline fs::path write_vgg16_weights(const fs::path& path,
                                    const std::map<std::string, torch::Tensor>& tensors = random_vgg16_weights()) {
  fs::create_directories(path.parent_path());
  patchgcl::io::write_safetensors(path.string(), tensors, {{"source", "test"}});
  return path;
}

/// Parameters of `a` and `b` are bit-for-bit equal. Meant for states that are copies (a checkpoint
/// round trip) or that the same kernels computed from the same inputs, in one process or two runs of
/// the trainer, with one thread (the tests set it: multi-threaded reductions may split their sums
/// otherwise); states that two code paths computed agree to rounding only.
inline bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

inline void write_garbage(const fs::path& path) { std::ofstream(path) << "this is not an image"; }

/// Keeps the first `bytes` bytes of `from` in `to` (a file cut short, as by a crashed copy).
inline void write_truncated(const fs::path& from, const fs::path& to, size_t bytes) {
  std::string data = read_text(from);
  REQUIRE(bytes < data.size());
  std::ofstream(to, std::ios::binary).write(data.data(), static_cast<std::streamsize>(bytes));
}

/// Buffers and parameters of `a` and `b` are bit-for-bit equal (see same_parameters).
inline bool same_state(torch::nn::Module& a, torch::nn::Module& b) {
  if (!same_parameters(a, b)) return false;
  auto ba = a.named_buffers(), bb = b.named_buffers();
  if (ba.size() != bb.size()) return false;
  for (const auto& x : ba)
    if (!torch::equal(x.value(), bb[x.key()])) return false;
  return true;
}

/// The example trainer executable (CMake passes its path), run with one thread so that two runs of
/// the same command compute the same bits.
inline const std::string kTrainerBinary = PATCHGCL_TRAINER_BINARY;

/// A cache folder that does not exist: a trainer child never finds what this machine has fetched
/// (the default --vgg-weights), so a test's outcome does not depend on it.
inline constexpr char kNoCache[] = "PATCHGCL_CACHE=/nonexistent/patchgcl-test-cache";

/// The environment of a trainer child: this process's without torchrun's variables, with one
/// OpenMP and MKL thread (no other OMP_ setting) and kNoCache, then changed by `changes`
/// ("NAME=value"; "NAME=" removes NAME).
inline std::vector<std::string> trainer_environment(const std::vector<std::string>& changes = {}) {
  std::vector<std::string> env;
  for (auto& e : patchgcl_test::current_environment())
    if (e.rfind("OMP_", 0) != 0 && e.rfind("MKL_NUM_THREADS=", 0) != 0) env.push_back(std::move(e));
  env = patchgcl_test::changed_environment(
      std::move(env), {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "MASTER_ADDR=", "MASTER_PORT=", "PATCHGCL_AGENT_STORE=",
                       "OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE", "MKL_NUM_THREADS=1", kNoCache});
  return patchgcl_test::changed_environment(std::move(env), changes);
}

/// fork + execve of `kTrainerBinary --threads 1 ARGS...` (ARGS' own --threads if they start with it)
/// in trainer_environment(environment_changes), stdout and stderr to `log`. Returns the child's pid without waiting for
/// it.
inline pid_t spawn_trainer(const std::vector<std::string>& args, const fs::path& log,
                           const std::vector<std::string>& environment_changes = {}) {
  std::vector<std::string> argv = {kTrainerBinary, "--threads", "1"};
  if (!args.empty() && args[0] == "--threads") argv.resize(1);  // the test chooses
  argv.insert(argv.end(), args.begin(), args.end());
  return patchgcl_test::spawn(std::move(argv), trainer_environment(environment_changes), log.string());
}

/// Runs the trainer to its end: exit code (-signal if killed) and everything it printed.
struct Finished {
  int status;
  std::string output;
};
inline Finished run_trainer(const std::vector<std::string>& args, const fs::path& log,
                            const std::vector<std::string>& environment_changes = {}) {
  const int status = patchgcl_test::wait_status(spawn_trainer(args, log, environment_changes));
  return {patchgcl_test::exit_code(status), read_text(log)};
}

/// Last "step" of a log.jsonl, 0 when it has none (it may end in a half-written line).
inline int64_t last_logged_step(const fs::path& log) {
  int64_t step = 0;
  for (const auto& r : report::read_log(log))
    if (r.count("step")) step = static_cast<int64_t>(r.at("step"));
  return step;
}

/// Last "step N/" progress line a trainer process printed to `output`, 0 before its first one.
/// Unlike log.jsonl (which holds the killed predecessor's lines until the resumed run truncates
/// it) this is the live process's own progress.
inline int64_t last_printed_step(const fs::path& output) {
  const std::string text = read_text(output);
  const auto at = text.rfind("step ");
  return at == std::string::npos ? 0 : std::strtoll(text.c_str() + at + 5, nullptr, 10);
}

/// Step of the checkpoint at `path`, loaded completely into a Trainer of its own configuration
/// (throws if it does not load); -1 when there is no checkpoint.
inline int64_t loadable_checkpoint_step(const fs::path& path) {
  if (!fs::exists(path)) return -1;
  Trainer t(checkpoint::read_config(path), torch::kCPU);
  checkpoint::restore(t, path);
  return t.step();
}

/// What a parser of `text` (HTML or SVG) would trip over: a tag or an attribute value that does
/// not end, a '<' inside an attribute value, an end tag that closes no open element, an element
/// never closed. Empty when well-formed. HTML's void elements (meta, br, img) need no end tag,
/// `<!...>` is skipped. `counts` (optional) gets the number of start tags of each element.
inline std::string markup_problems(const std::string& text, std::map<std::string, int>* counts = nullptr) {
  static const std::set<std::string> void_elements = {"area", "br", "hr", "img", "input", "link", "meta"};
  std::vector<std::string> open;
  for (size_t at = text.find('<'); at != std::string::npos; at = text.find('<', at)) {
    if (text.compare(at, 2, "<!") == 0) {
      const auto end = text.find('>', at);
      if (end == std::string::npos) return fmt::format("'<!' at offset {} never ends", at);
      at = end + 1;
      continue;
    }
    const bool closing = at + 1 < text.size() && text[at + 1] == '/';
    size_t i = at + 1 + (closing ? 1 : 0);
    const size_t name_start = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-')) ++i;
    const std::string name = text.substr(name_start, i - name_start);
    if (name.empty()) return fmt::format("'<' without an element name at offset {}", at);
    char quote = 0;
    for (; i < text.size() && (quote || text[i] != '>'); ++i) {
      if (text[i] == '<') return fmt::format("'<' inside the tag <{}> at offset {}", name, at);
      if (quote && text[i] == quote) quote = 0;
      else if (!quote && (text[i] == '\'' || text[i] == '"')) quote = text[i];
    }
    if (i == text.size()) return fmt::format("the tag <{}> at offset {} never ends", name, at);
    if (closing) {
      if (open.empty() || open.back() != name)
        return fmt::format("</{}> at offset {} closes {}", name, at,
                           open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else {
      if (counts) ++(*counts)[name];
      if (text[i - 1] != '/' && !void_elements.count(name)) open.push_back(name);
    }
    at = i + 1;
  }
  return open.empty() ? "" : fmt::format("<{}> is never closed", open.back());
}

}  // namespace trainer_tests
