// Which network interface a rank's Gloo transport binds. Gloo's default (the address this host's
// name resolves to) is loopback on a default Debian install (/etc/hosts maps the name to
// 127.0.1.1), so ranks on two machines could not connect. The choice, in order:
//   1. GLOO_SOCKET_IFNAME, comma-separated interface names (PyTorch's variable): one transport
//      device each;
//   2. MASTER_ADDR on loopback: every rank is on this machine, loopback;
//   3. the host name's address, when it is not loopback and is this machine's (Gloo's own default);
//   4. the interface whose network holds MASTER_ADDR (an address of this machine included);
//   5. the interface of the default route.
// Each rank says what it chose, and the address it advertises goes into the store, so that a group
// that does not form names the address every peer advertised (process_group.hpp).
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {
namespace dist {

/// What the rank's Gloo transport binds to.
struct GlooTransport {
  std::vector<std::string> interfaces;  ///< devices by interface name; empty: by `hostname`
  std::string hostname;                 ///< bind to this name's address (when `interfaces` is empty)
  std::string address;                  ///< the IPv4 address the rank advertises to its peers
  std::string why;                      ///< which rule chose it, for the start-up line
};

/// An IPv4 interface of this machine.
struct Ipv4Interface {
  std::string name;
  uint32_t address = 0, netmask = 0;  ///< host byte order
};

inline std::string ipv4_text(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN] = {};
  return inet_ntop(AF_INET, &a, buf, sizeof buf) ? buf : "?";
}
inline bool is_loopback(uint32_t host_order) { return (host_order >> 24) == 127; }

/// The IPv4 address `host` resolves to (a dotted address or a name), if any.
inline std::optional<uint32_t> resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* found = nullptr;
  if (host.empty() || getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) return std::nullopt;
  const uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr.s_addr);
  freeaddrinfo(found);
  return a;
}

/// The interfaces that are up and have an IPv4 address.
inline std::vector<Ipv4Interface> ipv4_interfaces() {
  std::vector<Ipv4Interface> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && i->ifa_netmask)
      out.push_back({i->ifa_name, ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr),
                     ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr)});
  freeifaddrs(list);
  return out;
}

/// The interface of the default route (/proc/net/route), if there is one.
inline std::optional<std::string> default_route_interface() {
  std::ifstream routes("/proc/net/route");
  std::string line, name, destination;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream fields(line);
    if (fields >> name >> destination && destination == "00000000") return name;
  }
  return std::nullopt;
}

inline std::vector<std::string> split_interface_list(const std::string& list) {
  std::vector<std::string> names;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');)
    if (!name.empty()) names.push_back(name);
  return names;
}

/// The transport for a rank whose master is `master_addr`, with GLOO_SOCKET_IFNAME `ifname_list`
/// (null or empty: unset), on a machine named `hostname` with `interfaces`.
inline GlooTransport choose_gloo_transport(const std::string& master_addr, const char* ifname_list,
                                           const std::string& hostname, const std::vector<Ipv4Interface>& interfaces,
                                           const std::optional<std::string>& default_route) {
  auto find = [&](const std::string& name) -> const Ipv4Interface* {
    for (const auto& i : interfaces)
      if (i.name == name) return &i;
    return nullptr;
  };
  auto by_interface = [&](const Ipv4Interface& i, const std::string& why) {
    return GlooTransport{{i.name}, "", ipv4_text(i.address), fmt::format("interface {}: {}", i.name, why)};
  };
  if (ifname_list && *ifname_list) {
    GlooTransport t;
    t.why = fmt::format("GLOO_SOCKET_IFNAME={}", ifname_list);
    for (const auto& name : split_interface_list(ifname_list)) {
      const auto* i = find(name);
      if (!i) {
        std::vector<std::string> known;
        for (const auto& k : interfaces) known.push_back(k.name);
        throw std::invalid_argument(
            fmt::format("GLOO_SOCKET_IFNAME names '{}', which is not an IPv4 interface of this "
                        "machine (it has: {})",
                        name, fmt::join(known, ", ")));
      }
      t.interfaces.push_back(name);
      if (t.address.empty()) t.address = ipv4_text(i->address);
    }
    if (t.interfaces.empty()) throw std::invalid_argument("GLOO_SOCKET_IFNAME is set but names no interface");
    return t;
  }
  const auto master = resolve_ipv4(master_addr);
  if (master && is_loopback(*master)) return {{}, "127.0.0.1", "127.0.0.1", "MASTER_ADDR is loopback"};
  const auto own = resolve_ipv4(hostname);
  const bool own_is_here =
      own && !is_loopback(*own) &&
      std::any_of(interfaces.begin(), interfaces.end(), [&](const Ipv4Interface& i) { return i.address == *own; });
  if (own_is_here) return {{}, hostname, ipv4_text(*own), fmt::format("the address of the host name '{}'", hostname)};
  if (master)
    for (const auto& i : interfaces)
      if (!is_loopback(i.address) && (i.address & i.netmask) == (*master & i.netmask))
        return by_interface(i, fmt::format("its network holds MASTER_ADDR {}", master_addr));
  if (default_route)
    if (const auto* i = find(*default_route)) return by_interface(*i, "the default route");
  throw std::invalid_argument(fmt::format(
      "no network interface of this machine reaches MASTER_ADDR {} (the host name '{}' resolves to loopback, no "
      "interface's network holds it, no default route): set GLOO_SOCKET_IFNAME to the interface to use",
      master_addr, hostname));
}

/// The same for this process: its GLOO_SOCKET_IFNAME, host name, interfaces and routes.
inline GlooTransport choose_gloo_transport(const std::string& master_addr) {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return choose_gloo_transport(master_addr, std::getenv("GLOO_SOCKET_IFNAME"), name, ipv4_interfaces(),
                               default_route_interface());
}

}  // namespace dist
}  // namespace trainer
