// SIGINT and SIGTERM during `train`: the first one lets the current step finish, the trainer then
// writes a checkpoint (atomically, as always) and exits with the conventional status 128 + signal
// (130 for SIGINT, 143 for SIGTERM); a second one exits at once (same status, no checkpoint).
#pragma once

#include <unistd.h>
#include <csignal>
#include <cstring>

namespace trainer {

namespace detail {
inline volatile std::sig_atomic_t stop_signal = 0;

extern "C" inline void on_stop_signal(int signo) {
  // Only async-signal-safe calls here: write(2) and _exit(2).
  if (stop_signal != 0) {
    static const char msg[] = "\nsecond signal: exiting at once, without a checkpoint\n";
    (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    ::_exit(128 + signo);
  }
  stop_signal = signo;
  static const char msg[] =
      "\nsignal received: finishing the current step, then writing a checkpoint (send it again to exit at once)\n";
  (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
}
}  // namespace detail

/// Installs the handlers for its lifetime (train() holds one) and restores the previous ones after.
class StopOnSignal {
 public:
  StopOnSignal() {
    detail::stop_signal = 0;
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = detail::on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // a signal must not make a write of the checkpoint or log fail with EINTR
    ::sigaction(SIGINT, &action, &previous_int_);
    ::sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopOnSignal() {
    ::sigaction(SIGINT, &previous_int_, nullptr);
    ::sigaction(SIGTERM, &previous_term_, nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  /// 0, or the number of the first SIGINT/SIGTERM received since the handlers were installed.
  static int requested() { return detail::stop_signal; }
  /// The exit status a command stopped by `signo` returns: 128 + signo (130, 143), as a shell reports it.
  static int exit_status(int signo) { return 128 + signo; }

 private:
  struct sigaction previous_int_, previous_term_;
};

/// Set once a run stopped early on a signal (train() returns normally; main() exits 128 + signo).
inline int& interrupted_by_signal() {
  static int signo = 0;
  return signo;
}

}  // namespace trainer
