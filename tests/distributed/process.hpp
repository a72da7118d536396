#pragma once

// Child processes for multi-process tests: fork + exec (nothing runs between the two, so the
// parent's threads do not matter), a pipe on the child's stdout, and a wait with a deadline.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace patchgcl_test {

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;  ///< read end of the child's stdout, or -1
};

/// The path of the running executable.
inline std::string self_exe() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error("readlink(/proc/self/exe) failed");
  return std::string(buf.data(), static_cast<size_t>(n));
}

/// Starts `args[0]` with `args`, the parent's environment plus `env` ("NAME=value"; an entry
/// "NAME=" with nothing after '=' removes NAME), stdout piped when `capture_stdout`.
inline Child spawn(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                   bool capture_stdout = false) {
  int fds[2] = {-1, -1};
  if (capture_stdout && pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> environment;
  for (char** e = environ; *e; ++e) environment.emplace_back(*e);
  for (const auto& kv : env) {
    const auto name = kv.substr(0, kv.find('=') + 1);
    std::vector<std::string> kept;
    for (auto& e : environment)
      if (e.compare(0, name.size(), name) != 0) kept.push_back(e);
    environment = std::move(kept);
    if (kv.size() > name.size()) environment.push_back(kv);
  }
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (capture_stdout) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  Child c;
  c.pid = pid;
  if (capture_stdout) {
    close(fds[1]);
    c.stdout_fd = fds[0];
  }
  return c;
}

/// One line from `fd` (without '\n'), or throws after `timeout`.
inline std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("no line from the child within the timeout");
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char ch = 0;
    const ssize_t n = read(fd, &ch, 1);
    if (n <= 0) throw std::runtime_error("the child closed its stdout before writing a line (got '" + line + "')");
    if (ch == '\n') return line;
    line.push_back(ch);
  }
}

/// Everything left on `fd` until EOF.
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

/// waitpid's status, or -1 after SIGKILL when the child is still running at `timeout`.
inline int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) throw std::runtime_error("waitpid failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

inline bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

/// A fresh temporary directory.
inline std::string temp_dir(const std::string& prefix) {
  std::string tmpl = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) + "/" + prefix +
                     "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

}  // namespace patchgcl_test
