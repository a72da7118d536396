// The configuration a checkpoint stores (`key=value` lines, TrainConfig::serialize()), read back with
// the command line's rules: a checkpoint is a file from outside, so every value goes through the
// same checks as the option it came from, and a bad one is refused with the field, the rule and
// the value, never a LibTorch assertion, a std::stoll message or an allocation of what it asks for.
#pragma once

#include "trainer/train/config.hpp"

#include <patchgcl/detail/integer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace trainer {

namespace detail {
/// Whole-string decimal integer of type T, as the command line reads an integer option
/// (patchgcl::detail::parse_integer); errors start with `where` and name the field `key`.
template <typename T>
T parse_integer_field(const std::string& key, const std::string& value, const std::string& where) {
  try {
    return patchgcl::detail::parse_integer<T>("field '" + key + "'", value);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
}
/// Whole-string real number (nan and inf are read, and refused later by validate() where the option refuses them).
inline double parse_real_field(const std::string& key, const std::string& value, const std::string& where) {
  try {
    return option_detail::read_real(value, "field '" + key + "'");
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
}

/// The `key=value` lines of `text`: every key one of config_options(), none twice.
inline std::map<std::string, std::string> config_lines(const std::string& text, const std::string& where) {
  std::map<std::string, std::string> kv;
  const auto& table = config_options();
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    const std::string key = line.substr(0, eq);
    const bool known = std::any_of(table.begin(), table.end(), [&](const auto& o) { return o.key == key; });
    if (eq == std::string::npos || !known)
      throw std::runtime_error(fmt::format("{}: configuration line {} is not a known 'field=value' (got '{}')", where,
                                           line_no, line.substr(0, 64)));
    if (!kv.emplace(key, line.substr(eq + 1)).second)
      throw std::runtime_error(fmt::format("{}: configuration field '{}' appears twice", where, key));
  }
  return kv;
}
}  // namespace detail

/// Parses `text` (TrainConfig::serialize()) and validates it exactly as the command line validates
/// its options (TrainConfig::validate()). `where` names the source in errors ("checkpoint 'r/ckpt.safetensors'").
/// Options that do not apply to the run's data mode (load_size and synthetic_* in single-image
/// mode, ...) may be absent and then keep their defaults, as may those held only when not the
/// default (Saved::kUnlessDefault); every field present must parse.
inline TrainConfig parse_config_text(const std::string& text, const std::string& where) {
  const auto values = detail::config_lines(text, where);
  TrainConfig c;
  try {
    read_options(config_options(), values, c, [](const OptionSpec<TrainConfig>& o) { return "field '" + o.key + "'"; });
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
  if (const auto* missing = missing_option(config_options(), values, c))
    throw std::runtime_error(fmt::format("{}: configuration lacks the field '{}'", where, missing->key));
  c.derive_data_options();
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{} holds a configuration the command line refuses: {}", where, e.what()));
  }
  return c;
}

}  // namespace trainer
