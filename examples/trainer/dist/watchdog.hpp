// A deadline for a step that has no timeout of its own (Gloo's wait for its peers' connections):
// past it the process ends with an error line rather than wait on.
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

}  // namespace dist
}  // namespace trainer
