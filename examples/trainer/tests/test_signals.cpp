// SIGINT and SIGTERM during `train`: the first finishes the step, checkpoints
// atomically and exits 128 + signal; a second exits at once. Also the start-up lines,
// which a long run prints before its first progress line.
#include "trainer/tests/fault_helpers.hpp"

#include <csignal>

using namespace trainer_tests;

TEST_CASE("The first SIGTERM asks the run to stop; a second one exits at once with 128 + signal", "[signal][faults]") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    StopOnSignal guard;
    ::raise(SIGTERM);
    if (StopOnSignal::requested() != SIGTERM) ::_exit(3);
    ::raise(SIGTERM);  // the handler _exit()s with 143
    ::_exit(4);
  }
  const int status = patchgcl_test::wait_status(pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  CHECK(StopOnSignal::exit_status(SIGINT) == 130);
}

TEST_CASE("SIGTERM finishes the step, checkpoints and exits 143; a second signal exits at once",
          "[signal][cli][faults]") {
  TempDir dir("sigterm");
  const fs::path run = dir.path / "run";
  // A run that would take hours: no checkpoint before its end, so only the signal can write one.
  const auto args = tiny_train(run, "2000000") +
                    std::vector<std::string>{"--checkpoint-every", "2000000", "--sample-every", "2000000"};
  const fs::path out = dir.path / "out1";
  pid_t pid = spawn_trainer(args, out);
  REQUIRE(wait_for([&] { return last_printed_step(out) >= 3; }));
  ::kill(pid, SIGTERM);
  int status = patchgcl_test::wait_status(pid);
  const std::string text = read_text(out);
  INFO(text);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  // The start-up line came first (after the warnings about the process's environment that any
  // command may print, such as OpenBLAS's kernels), then the first step's time and the estimate.
  std::string body = text;
  while (body.rfind("warning: ", 0) == 0 && body.find('\n') != std::string::npos) body.erase(0, body.find('\n') + 1);
  CHECK(body.rfind("train: embedded synthetic dataset, 4 images per domain, 24 x 24 | G: ngf 4, 1 residual blocks",
                   0) == 0);
  CHECK_THAT(text, Catch::Contains("first step took ") &&
                       Catch::Contains("warning: on the CPU this run will take about") &&
                       Catch::Contains("fewer --steps, or --device cuda"));
  CHECK(text.find("first step took") < text.find("step 1/2000000"));
  const auto stop = text.find("stopped by SIGTERM at step ");
  REQUIRE(stop != std::string::npos);
  const int64_t stopped_at = std::strtoll(text.c_str() + stop + 27, nullptr, 10);
  CHECK(stopped_at >= 3);
  CHECK(loadable_checkpoint_step(run / "ckpt.safetensors") == stopped_at);  // the step it finished, saved
  CHECK_FALSE(fs::exists(run / "ckpt.safetensors.tmp"));
  // Resumed, then two signals at once: the second exits without finishing the step or saving.
  const fs::path out2 = dir.path / "out2";
  pid = spawn_trainer(args + std::vector<std::string>{"--resume"}, out2);
  REQUIRE(wait_for([&] { return last_printed_step(out2) >= stopped_at + 2; }));
  ::kill(pid, SIGINT);
  ::kill(pid, SIGTERM);
  status = patchgcl_test::wait_status(pid);
  const std::string text2 = read_text(out2);
  INFO(text2);
  REQUIRE(WIFEXITED(status));
  CHECK((WEXITSTATUS(status) == 130 || WEXITSTATUS(status) == 143));
  CHECK_THAT(text2, Catch::Contains("second signal: exiting at once, without a checkpoint"));
  CHECK(text2.find("stopped by") == std::string::npos);
  CHECK(loadable_checkpoint_step(run / "ckpt.safetensors") == stopped_at);  // untouched
}
