#pragma once
// The options of a Python-side loss as one string, "key=value;key=value" (keys as the C++
// option names, nested ones dotted: "adjacency.threshold=0.1"), read into the C++ options
// structs. One string is also the key of the module cache (ops_losses.cpp). Every key must be
// used, so a misspelt keyword is an error rather than a silent default.
#include <patchgcl/detail/integer.hpp>
#include <patchgcl/patchgcl.hpp>

#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl_python {

class OptionSpec {
 public:
  OptionSpec(const std::string& spec, const char* fn) : fn_(fn) {
    size_t start = 0;
    while (start < spec.size()) {
      size_t end = spec.find(';', start);
      if (end == std::string::npos) end = spec.size();
      const auto item = spec.substr(start, end - start);
      const auto eq = item.find('=');
      TORCH_CHECK(eq != std::string::npos && eq > 0, fn_, ": malformed option '", item, "' (expected key=value)");
      values_[item.substr(0, eq)] = item.substr(eq + 1);
      start = end + 1;
    }
  }

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string text(const std::string& key) {
    used_.insert(key);
    return values_.at(key);
  }
  int64_t integer(const std::string& key) { return to_integer(key, text(key)); }
  double real(const std::string& key) { return to_real(key, text(key)); }
  bool boolean(const std::string& key) {
    const auto v = text(key);
    TORCH_CHECK(v == "true" || v == "false", fn_, ": option `", key, "` must be a bool, got '", v, "'");
    return v == "true";
  }
  std::vector<int64_t> integers(const std::string& key) {
    std::vector<int64_t> out;
    for (const auto& item : split(text(key))) out.push_back(to_integer(key, item));
    return out;
  }
  std::vector<double> reals(const std::string& key) {
    std::vector<double> out;
    for (const auto& item : split(text(key))) out.push_back(to_real(key, item));
    return out;
  }
  template <typename E>
  E choice(const std::string& key, const std::vector<std::pair<const char*, E>>& names) {
    const auto v = text(key);
    std::string known;
    for (const auto& n : names) {
      if (v == n.first) return n.second;
      known += known.empty() ? n.first : std::string(", ") + n.first;
    }
    TORCH_CHECK(false, fn_, ": option `", key, "` must be one of ", known, ", got '", v, "'");
  }

  /// Calls `set(read(key))` when the key was given.
  template <typename Read, typename Set>
  void maybe(const std::string& key, Read read, Set set) {
    if (has(key)) set(read(key));
  }

  void check_all_used() const {
    for (const auto& kv : values_) TORCH_CHECK(used_.count(kv.first), fn_, ": unknown option `", kv.first, "`");
  }

 private:
  static std::vector<std::string> split(const std::string& v) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= v.size() && !v.empty()) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      out.push_back(v.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
  int64_t to_integer(const std::string& key, const std::string& v) const {
    int64_t x = 0;
    const auto read =
        patchgcl::detail::read_integer(v, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), x);
    TORCH_CHECK(read == patchgcl::detail::IntegerText::kOk, fn_, ": option `", key, "` must be an integer",
                read == patchgcl::detail::IntegerText::kOutOfRange ? " in [-2^63, 2^63 - 1]" : "", ", got '", v, "'");
    return x;
  }
  double to_real(const std::string& key, const std::string& v) const {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);  // exact for Python's repr(float), "inf" and "-inf" included
    TORCH_CHECK(!v.empty() && end && *end == '\0', fn_, ": option `", key, "` must be a number, got '", v, "'");
    return x;
  }

  const char* fn_;
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

}  // namespace patchgcl_python
