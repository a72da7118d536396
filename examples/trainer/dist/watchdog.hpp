// Deadlines for what has no timeout of its own (Gloo's wait for its peers' connections, the way out
// of a rank whose collective failed): past one the process ends with an error line rather than
// wait on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace trainer {
namespace dist {

/// How long past --dist-timeout a rank may take to name the lost peer(s) and exit: the census of
/// peer_census.hpp (kCensusWait) and the error line, or the group formation's error.
constexpr std::chrono::seconds kGrace{5};
/// When a rank whose collective failed is ended if it has not stopped by itself (exit_after): a
/// second before kGrace runs out, so that the process is gone within the grace even when the
/// census blocks on an unreachable store until then.
constexpr std::chrono::seconds kExitDeadline = kGrace - std::chrono::seconds{1};

/// Ends the process (status 1) with an error line when it is not destroyed within `timeout`.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds timeout, std::string message)
      : message_(std::move(message)), thread_([this, timeout] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (done_.wait_for(lock, timeout, [this] { return finished_; })) return;
          std::cerr << "error: " << message_ << std::endl;
          std::_Exit(1);
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    }
    done_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  /// Appended to the message, in parentheses.
  void add_detail(const std::string& detail) {
    std::lock_guard<std::mutex> lock(mutex_);
    message_ += " (" + detail + ")";
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  bool finished_ = false;
  std::string message_;
  std::thread thread_;  // last: starts once the members it uses exist
};

namespace detail {
/// The line a pending exit_after prints, and its lock.
inline std::mutex& exit_line_mutex() {
  static std::mutex mutex;
  return mutex;
}
inline std::string& exit_line() {
  static std::string line;
  return line;
}
}  // namespace detail

/// Ends the process (status 1) with the error line `message` `after` from now, unless it has ended
/// by then. Armed once a collective has failed: the rank then only reports and exits, and nothing
/// on the way out (the process group's destructor waits for queued collectives, each of which may
/// wait --dist-timeout on a dead peer) may keep it running.
inline void exit_after(std::chrono::seconds after, std::string message) {
  {
    std::lock_guard<std::mutex> lock(detail::exit_line_mutex());
    detail::exit_line() = std::move(message);
  }
  std::thread([after] {
    std::this_thread::sleep_for(after);
    std::string line;
    {
      std::lock_guard<std::mutex> lock(detail::exit_line_mutex());
      line = detail::exit_line();
    }
    std::cerr << "error: " << line << std::endl;
    std::_Exit(1);
  }).detach();
}

/// Replaces the line a pending exit_after prints: what the rank learnt since it was armed (the
/// peers it lost), so that the line names them even when the way out is what blocks.
inline void set_exit_line(std::string message) {
  std::lock_guard<std::mutex> lock(detail::exit_line_mutex());
  detail::exit_line() = std::move(message);
}

}  // namespace dist
}  // namespace trainer
