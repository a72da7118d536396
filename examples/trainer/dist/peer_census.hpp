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

/// Who is still there: each survivor checks in under "census/<rank>" and waits a few seconds (at
/// most `timeout`, at most 10) for the others. A store that cannot be reached means rank 0 (which
/// serves it) is gone.
inline std::string lost_ranks(c10d::Store& store, int rank, int world, std::chrono::seconds timeout) {
  try {
    store.set(fmt::format("census/{}", rank), std::vector<uint8_t>{1});
    std::vector<int> lost;
    const auto wait = std::chrono::milliseconds(std::min<int64_t>(10000, 1000 * timeout.count()));
    for (int r = 0; r < world; ++r) {
      if (r == rank) continue;
      try {
        store.wait({fmt::format("census/{}", r)}, wait);
      } catch (const std::exception&) {
        lost.push_back(r);
      }
    }
    if (lost.empty()) return "no rank is lost (a timeout: raise --dist-timeout?)";
    return fmt::format("lost rank(s) {} (no sign of life {} s after the failure)", fmt::join(lost, ", "),
                       wait.count() / 1000.0);
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
