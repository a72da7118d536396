#pragma once

// Decimal integers read from text: the one parser for every integer the library and its example
// trainer read from a file, the command line or the environment (.pgt config entries, a
// checkpoint's configuration, options, torchrun's variables). The whole text must be the number:
// an optional sign ('+', or '-' where the type has negative values), then digits; no spaces, no
// base prefix, nothing after. A number the type cannot hold or outside [lo, hi] is refused, never
// wrapped or clamped. Layer: detail/ (the standard library only).

#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace patchgcl {
namespace detail {

/// What read_integer found in a text.
enum class IntegerText { kOk, kNotInteger, kOutOfRange };

/// The digits of `text` from position `first` on, as a magnitude; kNotInteger where there are none
/// or another character, kOutOfRange beyond 2^64 - 1.
inline IntegerText read_digits(const std::string& text, size_t first, unsigned long long& magnitude) noexcept {
  if (first == text.size()) return IntegerText::kNotInteger;
  constexpr unsigned long long kMax = std::numeric_limits<unsigned long long>::max();
  unsigned long long m = 0;
  bool overflow = false;
  for (size_t i = first; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return IntegerText::kNotInteger;
    const auto digit = static_cast<unsigned long long>(text[i] - '0');
    overflow = overflow || m > (kMax - digit) / 10;
    if (!overflow) m = m * 10 + digit;
  }
  magnitude = m;
  return overflow ? IntegerText::kOutOfRange : IntegerText::kOk;
}

/// Reads `text` as a decimal integer of type T in [lo, hi] (see the top of this file); `value` is
/// written only when the result is kOk.
template <typename T>
IntegerText read_integer(const std::string& text, T lo, T hi, T& value) noexcept {
  static_assert(std::is_integral<T>::value && !std::is_same<T, bool>::value, "read_integer reads an integer type");
  static_assert(sizeof(T) <= sizeof(unsigned long long), "read_integer reads at most 64-bit integers");
  const bool negative = !text.empty() && text[0] == '-';
  const bool signed_text = negative || (!text.empty() && text[0] == '+');
  unsigned long long magnitude = 0;
  const IntegerText digits = read_digits(text, signed_text ? 1 : 0, magnitude);
  if (digits != IntegerText::kOk) return digits;
  // The largest magnitude of each sign T holds: max(), and max() + 1 below zero where T is signed.
  const auto max_positive = static_cast<unsigned long long>(std::numeric_limits<T>::max());
  const unsigned long long max_negative = std::is_signed<T>::value ? max_positive + 1 : 0;
  if (magnitude > (negative ? max_negative : max_positive)) return IntegerText::kOutOfRange;
  // -magnitude without forming it in T first: -(magnitude - 1) - 1 stays in range down to min().
  const T v =
      !negative || magnitude == 0 ? static_cast<T>(magnitude) : static_cast<T>(-static_cast<T>(magnitude - 1) - 1);
  if (v < lo || v > hi) return IntegerText::kOutOfRange;
  value = v;
  return IntegerText::kOk;
}

/// "NAME must be an integer (got 'TEXT')", or "NAME must be an integer in [LO, HI] (got 'TEXT')"
/// for a number outside [lo, hi] or where [lo, hi] is narrower than T; `name` says what the text
/// is ("--steps", "field 'ngf'"). At most 64 characters of `text` are quoted.
template <typename T>
std::string integer_error(const std::string& name, const std::string& text, T lo, T hi, IntegerText what) {
  const bool whole_type = lo == std::numeric_limits<T>::min() && hi == std::numeric_limits<T>::max();
  const std::string range = what == IntegerText::kOutOfRange || !whole_type
                                ? " in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"
                                : std::string();
  const std::string shown = text.size() > 64 ? text.substr(0, 64) + "..." : text;
  return name + " must be an integer" + range + " (got '" + shown + "')";
}

/// The integer of type T in [lo, hi] that `text` holds; otherwise std::invalid_argument with
/// integer_error's message.
template <typename T>
T parse_integer(const std::string& name, const std::string& text, T lo = std::numeric_limits<T>::min(),
                T hi = std::numeric_limits<T>::max()) {
  T value{};
  const IntegerText what = read_integer(text, lo, hi, value);
  if (what != IntegerText::kOk) throw std::invalid_argument(integer_error(name, text, lo, hi, what));
  return value;
}

}  // namespace detail
}  // namespace patchgcl
