// What the trainer's tests share: temporary folders, the tiny configuration, state comparisons,
// files cut short or not images at all, the trainer binary run as a child process, and a check
// that a report is well-formed markup.
#pragma once

#include "trainer/commands/evaluate.hpp"
#include "trainer/commands/explain.hpp"
#include "trainer/commands/export.hpp"
#include "trainer/commands/synth.hpp"
#include "trainer/commands/train.hpp"
#include "trainer/commands/translate.hpp"
#include "trainer/tests/checkout_paths.hpp"
#include "trainer/tests/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace trainer_tests {

using namespace trainer;
namespace fs = std::filesystem;


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

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

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

/// fork + execve of `argv_s` with the environment `env_s`, in `cwd` (empty: this one), stdout and
/// stderr to `log`. Returns the child's pid without waiting for it. Everything the child needs is
/// built before fork(): between fork and exec a child of a multi-threaded process may only call
/// async-signal-safe functions (chdir, open, dup2, execve, _exit).
inline pid_t spawn_process(std::vector<std::string> argv_s, std::vector<std::string> env_s, const fs::path& log,
                           const fs::path& cwd = {}) {
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log_path = log.string(), dir = cwd.string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(125);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

/// fork + execve of `kTrainerBinary --threads 1 ARGS...` (ARGS' own --threads if they start with it),
/// one OpenMP thread, stdout and stderr to `log`. Returns the child's pid without waiting for it.
inline pid_t spawn_trainer(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv_s = {kTrainerBinary, "--threads", "1"};
  if (!args.empty() && args[0] == "--threads") argv_s.resize(1);  // the test chooses
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s = {"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE", "MKL_NUM_THREADS=1"};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OMP_", 4) != 0 && std::strncmp(*e, "MKL_NUM_THREADS=", 16) != 0) env_s.emplace_back(*e);
  return spawn_process(std::move(argv_s), std::move(env_s), log);
}

/// Runs the trainer to its end: exit status (-signal if killed) and everything it printed.
struct Finished {
  int status;
  std::string output;
};
inline Finished run_trainer(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = spawn_trainer(args, log);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status), read_text(log)};
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
        return fmt::format("</{}> at offset {} closes {}", name, at, open.empty() ? "nothing" : "<" + open.back() + ">");
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
