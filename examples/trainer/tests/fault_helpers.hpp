// What the tests of the trainer's fault handling share (test_image_decode.cpp, test_checkpoint_file.cpp,
// test_resources.cpp, test_exit_codes.cpp, test_signals.cpp): byte strings, a small valid JPEG, the
// decoder called on memory, the tiny command line, and a child's peak memory.
#pragma once

#include "trainer/tests/helpers.hpp"

#include <chrono>
#include <iterator>
#include <thread>

namespace trainer_tests {

inline std::vector<uint8_t> bytes_of(std::initializer_list<int> values) {
  std::vector<uint8_t> out;
  for (int v : values) out.push_back(static_cast<uint8_t>(v));
  return out;
}

/// A small valid baseline JPEG, 13 x 7 pixels: fuzz/corpus/trainer_image/seed1.jpg.
inline std::vector<uint8_t> small_jpeg() {
  const fs::path file = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_image" / "seed1.jpg";
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(out.size() == 698);  // the file as committed
  return out;
}

/// decode_image of `file` under `limits`; `error` gets the reason of a failure.
inline bool decode(const std::vector<uint8_t>& file, std::string& error, DecodeLimits limits = {}) {
  DecodedImage image;
  return decode_image(file.data(), file.size(), limits, image, error);
}

/// The tiny configuration of the command-line tests: `train` on 4 synthetic 24 x 24 images, or on
/// the folder `data` (without the embedded dataset's options, which are refused there).
inline std::vector<std::string> tiny_train(const fs::path& run, const std::string& steps, const fs::path& data = {}) {
  std::vector<std::string> args = {"train", "--run",   run.string(), "--ngf",       "4",
                                   "--ndf", "4",       "--n-blocks", "1",           "--num-patches",
                                   "16",    "--steps", steps,        "--log-every", "1"};
  const std::vector<std::string> source =
      data.empty() ? std::vector<std::string>{"--synthetic-size", "24", "--synthetic-count", "4"}
                   : std::vector<std::string>{"--data", data.string()};
  args.insert(args.end(), source.begin(), source.end());
  return args;
}

inline std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Waits (up to 60 s) until `pred` holds.
template <typename Pred>
bool wait_for(Pred pred) {
  for (int i = 0; i < 1200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

/// Runs the trainer to its end and returns its wait status and its peak resident memory in bytes
/// (VmHWM of its own address space, polled every 10 ms once it runs the trainer binary: before the
/// exec, the forked child still reports the test process's memory).
inline std::pair<int, double> run_measured(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = spawn_trainer(args, log);
  const std::string proc = "/proc/" + std::to_string(pid);
  const auto binary = fs::canonical(kTrainerBinary);
  double peak = 0;
  int status = 0;
  for (;;) {
    std::error_code ec;
    if (fs::read_symlink(proc + "/exe", ec) == binary) {
      std::ifstream in(proc + "/status");
      for (std::string key; in >> key;) {
        if (key == "VmHWM:") {
          double kb = 0;
          in >> kb;
          peak = std::max(peak, kb * 1024.0);
        }
        in.ignore(1 << 20, '\n');
      }
    }
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    REQUIRE(done >= 0);
    if (done == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {status, peak};
}

}  // namespace trainer_tests
