// One row of an option table (config_options(), config.hpp): an option's names on the command line
// and in config.txt, its help, how its value reads from and is written as text, the rule the value
// must meet, when the option applies, and how a checkpoint holds it. The consumers iterate the
// table: the command line (commands/train.hpp), validation (check_options), config.txt and the
// checkpoint's configuration (write_options, read_options; config_text.hpp) and the comparison of
// a resumed run's configuration with the checkpoint's (option_differences).
#pragma once

#include <patchgcl/detail/integer.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace trainer {

/// Throws std::invalid_argument("OPTION must be EXPECTED (got ACTUAL)"): every configuration error
/// names the command-line option, what it accepts and what it was given.
[[noreturn]] inline void bad_option(const std::string& option, const std::string& expected, const std::string& actual) {
  throw std::invalid_argument(option + " must be " + expected + " (got " + actual + ")");
}
/// The shortest text that reads back as exactly `v` ("0.0002", not "0.00020000000000000001"):
/// what a user wrote on the command line comes back as written, in config.txt and in messages.
inline std::string format_number(double v) { return fmt::format("{}", v); }

/// What an option's value is: how the command line takes it and config.txt spells it.
enum class OptionKind { kInteger, kReal, kFlag, kText, kChoice };

/// How a checkpoint (and config.txt) holds an option. Every option held is compared on resume: a
/// run continues only under the configuration its checkpoint was written with.
enum class Saved {
  kAlways,         ///< written wherever the option applies; a configuration lacking it there is refused
  kUnlessDefault,  ///< written when not the default; absent, it reads as the default (older configurations)
};

/// One option of `Owner` (TrainConfig), its value reached through type-erased accessors.
template <typename Owner>
struct OptionSpec {
  std::string names;  ///< CLI11's names: "--lr", "--nce-idt,!--no-nce-idt", "!--no-flip"
  std::string key;    ///< config.txt's and the checkpoint's name: "lr"
  std::string help;
  OptionKind kind = OptionKind::kText;
  std::vector<std::string> choices;  ///< kChoice: the accepted texts
  Saved saved = Saved::kAlways;
  bool help_shows_default = true;  ///< false where the help says what the default is (a flag shows none)
  /// The value as config.txt writes it: "0.0002", "1" (a flag), "graph".
  std::function<std::string(const Owner&)> text;
  /// Sets the value from `text`; std::invalid_argument("NAME must be ... (got '...')") when it is not one.
  std::function<void(Owner&, const std::string& text, const std::string& name)> read;
  /// Empty when the value is acceptable; otherwise what it must be ("at least 1").
  std::function<std::string(const Owner&)> problem;
  /// Empty where the option applies; otherwise why it does nothing and what to use instead.
  std::function<std::string(const Owner&)> unused = [](const Owner&) { return std::string(); };

  /// The option in messages: the first of `names` ("--nce-idt", "--no-flip").
  std::string flag() const {
    const std::string first = names.substr(0, names.find(','));
    return first[0] == '!' ? first.substr(1) : first;
  }
  bool applies(const Owner& o) const { return unused(o).empty(); }
  /// The value as messages show it: quoted when it is text ("''"), as written otherwise.
  std::string shown(const Owner& o) const { return kind == OptionKind::kText ? "'" + text(o) + "'" : text(o); }

  OptionSpec& applies_when(std::function<std::string(const Owner&)> why_not) {
    unused = std::move(why_not);
    return *this;
  }
  OptionSpec& unless_default() {
    saved = Saved::kUnlessDefault;
    return *this;
  }
  OptionSpec& default_in_help(bool shown) {
    help_shows_default = shown;
    return *this;
  }
};

namespace option_detail {

/// Reads a whole-string real number (nan and inf are read; an option's rule refuses them where it must).
inline double read_real(const std::string& text, const std::string& name) {
  char* end = nullptr;
  const double v = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || std::isspace(static_cast<unsigned char>(text[0])))
    throw std::invalid_argument(fmt::format("{} must be a number (got '{}')", name, text.substr(0, 64)));
  return v;
}

/// The accessors of a value of type T: how it reads from and is written as text.
template <typename T>
struct TextForm {
  static constexpr OptionKind kind = std::is_same<T, bool>::value       ? OptionKind::kFlag
                                     : std::is_integral<T>::value       ? OptionKind::kInteger
                                     : std::is_floating_point<T>::value ? OptionKind::kReal
                                                                        : OptionKind::kText;
  static std::string write(const T& v) {
    if constexpr (std::is_same<T, bool>::value) return v ? "1" : "0";
    else if constexpr (std::is_integral<T>::value) return std::to_string(v);
    else if constexpr (std::is_floating_point<T>::value) return format_number(v);
    else return v;
  }
  static T read(const std::string& text, const std::string& name) {
    if constexpr (std::is_same<T, bool>::value) {
      if (text != "0" && text != "1")
        throw std::invalid_argument(fmt::format("{} must be 0 or 1 (got '{}')", name, text.substr(0, 64)));
      return text == "1";
    } else if constexpr (std::is_integral<T>::value) {
      return patchgcl::detail::parse_integer<T>(name, text);
    } else if constexpr (std::is_floating_point<T>::value) {
      return read_real(text, name);
    } else {
      return text;
    }
  }
};

/// A rule that accepts every value.
struct AnyValue {
  template <typename Owner, typename T>
  std::string operator()(const Owner&, const T&) const {
    return {};
  }
};

}  // namespace option_detail

/// The option `names` (config.txt: `key`) of the value of type T that `get(owner)` reaches (a
/// generic lambda: a const Owner gives a const value); `rule(owner, value)` returns what the value
/// must be, or "" when it is acceptable.
template <typename Owner, typename T, typename Get, typename Rule>
OptionSpec<Owner> make_option(std::string names, std::string key, Get get, std::string help, Rule rule) {
  using Form = option_detail::TextForm<T>;
  OptionSpec<Owner> o;
  o.names = std::move(names);
  o.key = std::move(key);
  o.help = std::move(help);
  o.kind = Form::kind;
  o.text = [get](const Owner& c) { return Form::write(get(c)); };
  o.read = [get](Owner& c, const std::string& text, const std::string& name) { get(c) = Form::read(text, name); };
  o.problem = [get, rule](const Owner& c) -> std::string { return rule(c, get(c)); };
  return o;
}

/// An option of the member `m` of Owner: an integer, a real number, a flag (bool) or text.
template <typename Owner, typename T, typename Rule = option_detail::AnyValue>
OptionSpec<Owner> option(std::string names, std::string key, T Owner::*m, std::string help, Rule rule = {}) {
  const auto get = [m](auto& c) -> decltype(auto) { return (c.*m); };
  return make_option<Owner, T>(std::move(names), std::move(key), get, std::move(help), rule);
}
/// An option of the member `m` of Owner's member `outer` (config.data.crop_size).
template <typename Owner, typename Inner, typename T, typename Rule = option_detail::AnyValue>
OptionSpec<Owner> option(std::string names, std::string key, Inner Owner::*outer, T Inner::*m, std::string help,
                         Rule rule = {}) {
  const auto get = [outer, m](auto& c) -> decltype(auto) { return ((c.*outer).*m); };
  return make_option<Owner, T>(std::move(names), std::move(key), get, std::move(help), rule);
}

/// "a, b or c"
inline std::string or_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

/// An option of the enum member `m`: one of `values`, each a text and its enumerator, in the order
/// the help lists them.
template <typename Owner, typename E, typename Rule = option_detail::AnyValue>
OptionSpec<Owner> choice(std::string names, std::string key, E Owner::*m,
                         const std::vector<std::pair<std::string, E>>& values, std::string help, Rule rule = {}) {
  OptionSpec<Owner> o;
  o.names = std::move(names);
  o.key = std::move(key);
  o.help = std::move(help);
  o.kind = OptionKind::kChoice;
  for (const auto& v : values) o.choices.push_back(v.first);
  o.text = [m, values](const Owner& c) {
    for (const auto& v : values)
      if (v.second == c.*m) return v.first;
    throw std::logic_error("an enumerator without a text");
  };
  o.read = [m, values, expected = or_list(o.choices)](Owner& c, const std::string& text, const std::string& name) {
    for (const auto& v : values)
      if (v.first == text) {
        c.*m = v.second;
        return;
      }
    throw std::invalid_argument(fmt::format("{} must be {} (got '{}')", name, expected, text.substr(0, 64)));
  };
  o.problem = [m, rule](const Owner& c) -> std::string { return rule(c, c.*m); };
  return o;
}

/// Refuses the first value that breaks its option's rule, among the options that apply to `owner`:
/// std::invalid_argument("OPTION must be EXPECTED (got VALUE)").
template <typename Owner>
void check_options(const std::vector<OptionSpec<Owner>>& table, const Owner& owner) {
  for (const auto& o : table) {
    if (!o.applies(owner)) continue;
    const std::string expected = o.problem(owner);
    if (!expected.empty()) bad_option(o.flag(), expected, o.shown(owner));
  }
}

/// key -> text of each option a configuration file holds for `owner`: those that apply, less the
/// kUnlessDefault ones at their default.
template <typename Owner>
std::map<std::string, std::string> write_options(const std::vector<OptionSpec<Owner>>& table, const Owner& owner) {
  const Owner defaults{};
  std::map<std::string, std::string> out;
  for (const auto& o : table)
    if (o.applies(owner) && !(o.saved == Saved::kUnlessDefault && o.text(owner) == o.text(defaults)))
      out.emplace(o.key, o.text(owner));
  return out;
}

/// Reads `values` (key -> text) into `owner`, in table order; a text that is not a value of its
/// option throws std::invalid_argument naming the option as `name(option)` does.
template <typename Owner, typename Name>
void read_options(const std::vector<OptionSpec<Owner>>& table, const std::map<std::string, std::string>& values,
                  Owner& owner, const Name& name) {
  for (const auto& o : table)
    if (const auto it = values.find(o.key); it != values.end()) o.read(owner, it->second, name(o));
}

/// The first option `owner` needs that `values` lacks (held kAlways, and it applies); null when none.
template <typename Owner>
const OptionSpec<Owner>* missing_option(const std::vector<OptionSpec<Owner>>& table,
                                        const std::map<std::string, std::string>& values, const Owner& owner) {
  for (const auto& o : table)
    if (o.saved == Saved::kAlways && o.applies(owner) && !values.count(o.key)) return &o;
  return nullptr;
}

/// "KEY: A (checkpoint) vs B (command line)" for each option where `saved` and `wanted` differ; an
/// option that does not apply to one of them reads "(not set)" there.
template <typename Owner>
std::vector<std::string> option_differences(const std::vector<OptionSpec<Owner>>& table, const Owner& saved,
                                            const Owner& wanted) {
  std::vector<std::string> out;
  for (const auto& o : table) {
    const auto value = [&](const Owner& c) { return o.applies(c) ? o.text(c) : std::string("(not set)"); };
    const std::string a = value(saved), b = value(wanted);
    if (a != b) out.push_back(fmt::format("{}: {} (checkpoint) vs {} (command line)", o.key, a, b));
  }
  return out;
}

}  // namespace trainer
