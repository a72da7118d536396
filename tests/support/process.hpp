#pragma once
// Child processes for the tests that run programs: fork + execve with everything built before
// fork (between the two, a child of a multi-threaded process may only call async-signal-safe
// functions: chdir, open, dup2, execve, _exit), waits with and without a deadline, exit codes,
// the files a child wrote its output to, and a shell command's output.

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace patchgcl_test {

/// The path of the running executable.
inline std::string self_exe() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error("readlink(/proc/self/exe) failed");
  return std::string(buf.data(), static_cast<size_t>(n));
}

/// This process's environment, "NAME=value" each.
inline std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  return env;
}

/// `env` changed by `changes`, in order: "NAME=value" sets NAME, "NAME=" (nothing after '=') removes it.
inline std::vector<std::string> changed_environment(std::vector<std::string> env,
                                                    const std::vector<std::string>& changes) {
  for (const auto& kv : changes) {
    const auto name = kv.substr(0, kv.find('=') + 1);
    std::vector<std::string> kept;
    for (auto& e : env)
      if (e.compare(0, name.size(), name) != 0) kept.push_back(std::move(e));
    env = std::move(kept);
    if (kv.size() > name.size()) env.push_back(kv);
  }
  return env;
}

/// fork + execve of `args` (`args[0]` a path) with the environment `env`, in `cwd` (empty: this
/// one), its stdout and stderr to the file `log` (empty: this process's). Returns the child's pid
/// without waiting for it; a child that cannot chdir, open `log` or exec exits 125, 126 or 127.
inline pid_t spawn(std::vector<std::string> args, std::vector<std::string> env, const std::string& log = {},
                   const std::string& cwd = {}) {
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(125);
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) ::_exit(126);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

/// waitpid's status, however long the child runs.
inline int wait_status(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) throw std::runtime_error("waitpid failed");
  return status;
}

/// waitpid's status, or -1 after SIGKILL when the child is still running at `timeout`.
inline int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) throw std::runtime_error("waitpid failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

/// Whether the child has ended, without reaping it (a later wait still gets its status).
inline bool has_exited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

/// The exit code of a wait status, or -signal for a child a signal ended.
inline int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status); }

/// A wait status (or wait_for's -1) of a child that exited with code 0.
inline bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

/// The pids of `pid`'s children.
inline std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

/// The whole of a file (a child's log), "" when there is none.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Whether `program` is on PATH.
inline bool on_path(const std::string& program) {
  return std::system(("command -v '" + program + "' >/dev/null 2>&1").c_str()) == 0;
}

/// What `sh -c command` printed on stdout, and pclose's status; throws when no shell starts.
struct ShellOutput {
  int status = 0;
  std::string text;
};
inline ShellOutput shell_output(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for `" + command + "`");
  ShellOutput out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) out.text.append(buf, n);
  out.status = ::pclose(pipe);
  return out;
}

}  // namespace patchgcl_test
