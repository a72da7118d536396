// What the rendezvous store says about the other ranks when a collective or the process group
// fails: which ranks are lost (a census) and the addresses the peers advertised for Gloo. The
// Context's error messages (process_group.hpp) name them.
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trainer {
namespace dist {

/// The store key under which `rank` puts the address its Gloo transport advertises.
inline std::string gloo_address_key(int rank) { return fmt::format("gloo_address/{}", rank); }

/// How long a survivor waits for the others' check-in: the survivors of one failed collective
/// notice it within moments of each other (its timeout started when they entered it together), and
/// the census must end within the watchdog's grace (kGrace in watchdog.hpp).
constexpr std::chrono::seconds kCensusWait{2};

namespace detail {
/// Waits until `deadline` in all for the check-in "census/<r>" of each rank but `rank`; returns
/// those that did not check in.
inline std::vector<int> silent_ranks(c10d::Store& store, int rank, int world,
                                     std::chrono::steady_clock::time_point deadline) {
  std::vector<int> silent;
  for (int r = 0; r < world; ++r) {
    if (r == rank) continue;
    try {
      const auto rest =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      store.wait({fmt::format("census/{}", r)}, std::max(rest, std::chrono::milliseconds(1)));
    } catch (const std::exception&) {
      silent.push_back(r);
    }
  }
  return silent;
}
}  // namespace detail

/// Who is still there: each survivor checks in under "census/<rank>", waits up to kCensusWait (at
/// most `timeout`) in all for the others' check-in, then leaves "left/<rank>" and "saw/<rank>/<r>"
/// for each rank r it saw. A peer that checked in but left without seeing this rank failed earlier
/// and has stopped: its census ran while this rank was frozen (SIGSTOP), and it is lost too. A
/// store that cannot be reached means rank 0 (which serves it) is gone.
inline std::string lost_ranks(c10d::Store& store, int rank, int world, std::chrono::seconds timeout) {
  try {
    store.set(fmt::format("census/{}", rank), std::vector<uint8_t>{1});
    const auto wait = std::min<std::chrono::seconds>(kCensusWait, timeout);
    const auto silent = detail::silent_ranks(store, rank, world, std::chrono::steady_clock::now() + wait);
    std::vector<int> left;  // asked only of a store that answered every wait: it is reachable
    for (int r = 0; r < world && silent.empty(); ++r)
      if (r != rank && store.check({fmt::format("left/{}", r)}) && !store.check({fmt::format("saw/{}/{}", r, rank)}))
        left.push_back(r);
    for (int r = 0; r < world; ++r)
      if (r != rank && std::find(silent.begin(), silent.end(), r) == silent.end())
        store.set(fmt::format("saw/{}/{}", rank, r), std::vector<uint8_t>{1});
    store.set(fmt::format("left/{}", rank), std::vector<uint8_t>{1});
    if (!silent.empty())
      return fmt::format("lost rank(s) {} (no sign of life {} s after the failure)", fmt::join(silent, ", "),
                         wait.count());
    if (!left.empty())
      return fmt::format("lost rank(s) {} (it failed earlier, while this rank did not answer, and stopped)",
                         fmt::join(left, ", "));
    return "no rank is lost (a timeout: raise --dist-timeout?)";
  } catch (const std::exception&) {
    return "lost rank 0 (the master: its rendezvous store is unreachable)";
  }
}

/// "; rank 0 advertised 10.0.0.1, ..., this rank 10.0.0.2" from the store (`advertised`: this
/// rank's address, once chosen), for a group that did not form; "" when no peer advertised one.
inline std::string peer_addresses(c10d::Store& store, int rank, int world,
                                  const std::optional<std::string>& advertised) {
  std::vector<std::string> seen;
  try {
    for (int r = 0; r < world; ++r) {
      const auto key = gloo_address_key(r);
      if (r == rank || !store.check({key})) continue;
      const auto v = store.get(key);
      seen.push_back(fmt::format("rank {} advertised {}", r, std::string(v.begin(), v.end())));
    }
  } catch (const std::exception&) {
  }
  if (seen.empty()) return "";
  return fmt::format("; {}{}", fmt::join(seen, ", "),
                     advertised ? fmt::format(", this rank {}", *advertised) : std::string());
}

}  // namespace dist
}  // namespace trainer
