// The configuration a checkpoint stores (`key=value` lines, TrainConfig::fields()), read back with
// the command line's rules: a checkpoint is a file from outside, so every value goes through the
// same checks as the option it came from, and a bad one is refused with the field, the rule and
// the value, never a LibTorch assertion, a std::stoll message or an allocation of what it asks for.
#pragma once

#include "trainer/train/config.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace trainer {

namespace detail {
/// Whole-string decimal integer in [lo, hi], as CLI11 parses an integer option.
template <typename T>
T parse_integer_field(const std::string& key, const std::string& value, const std::string& where) {
  T out{};
  const char* first = value.data();
  const char* last = value.data() + value.size();
  if (first != last && *first == '+') ++first;
  auto [end, ec] = std::from_chars(first, last, out);
  if (value.empty() || ec == std::errc::invalid_argument || end != last)
    throw std::runtime_error(fmt::format("{}: field '{}' must be an integer (got '{}')", where, key, value.substr(0, 64)));
  if (ec == std::errc::result_out_of_range)
    throw std::runtime_error(fmt::format("{}: field '{}' must be an integer in [{}, {}] (got '{}')", where, key,
                                         std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), value.substr(0, 64)));
  return out;
}
/// Whole-string real number (nan and inf are read, and refused later by validate() where the option refuses them).
inline double parse_real_field(const std::string& key, const std::string& value, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  const double v = value.empty() ? 0.0 : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || std::isspace(static_cast<unsigned char>(value[0])))
    throw std::runtime_error(fmt::format("{}: field '{}' must be a number (got '{}')", where, key, value.substr(0, 64)));
  return v;
}
inline bool parse_flag_field(const std::string& key, const std::string& value, const std::string& where) {
  if (value != "0" && value != "1")
    throw std::runtime_error(fmt::format("{}: field '{}' must be 0 or 1 (got '{}')", where, key, value.substr(0, 64)));
  return value == "1";
}
}  // namespace detail

/// Parses `text` (TrainConfig::serialize()) and validates it exactly as the command line validates
/// its options (TrainConfig::validate()). `where` names the source in errors ("checkpoint 'r/ckpt.safetensors'").
/// Fields that do not apply to the run's data mode (load_size and synthetic_* in single-image mode,
/// ...) may be absent and then keep their defaults; every field present must parse.
inline TrainConfig parse_config_text(const std::string& text, const std::string& where) {
  static const std::set<std::string> known = {
      "data", "load_size", "crop_size", "flip", "single_image", "min_zoom", "synthetic_size", "synthetic_count",
      "loss", "features", "lambda_nce", "lambda_gan", "nce_idt", "num_patches", "ngf", "n_blocks", "ndf",
      "batch_size", "steps", "decay_steps", "lr", "beta1", "beta2", "seed", "negatives",
      "input_nc", "output_nc", "flip_equivariance"};
  std::map<std::string, std::string> kv;
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
    if (eq == std::string::npos || !known.count(key))
      throw std::runtime_error(fmt::format("{}: configuration line {} is not a known 'field=value' (got '{}')", where,
                                           line_no, line.substr(0, 64)));
    if (!kv.emplace(key, line.substr(eq + 1)).second)
      throw std::runtime_error(fmt::format("{}: configuration field '{}' appears twice", where, key));
  }
  TrainConfig c;
  const auto has = [&](const char* k) { return kv.count(k) != 0; };
  const auto get = [&](const char* k) -> const std::string& {
    auto it = kv.find(k);
    if (it == kv.end()) throw std::runtime_error(fmt::format("{}: configuration lacks the field '{}'", where, k));
    return it->second;
  };
  using detail::parse_flag_field;
  using detail::parse_integer_field;
  using detail::parse_real_field;
  c.data.root = get("data");
  c.data.single_image = has("single_image") && parse_flag_field("single_image", get("single_image"), where);
  const bool synthetic = c.data.root == kSyntheticData, folders = !synthetic && !c.data.single_image;
  // Fields the mode uses are required; the others are read when present (older checkpoints list all).
  const auto integer = [&](const char* k, bool required, auto& field) {
    if (required || has(k)) field = parse_integer_field<std::decay_t<decltype(field)>>(k, get(k), where);
  };
  integer("load_size", folders, c.data.load_size);
  integer("crop_size", !synthetic, c.data.crop_size);
  integer("synthetic_size", synthetic, c.data.synthetic_size);
  integer("synthetic_count", synthetic, c.data.synthetic_count);
  if (c.data.single_image || has("min_zoom")) c.data.min_zoom = parse_real_field("min_zoom", get("min_zoom"), where);
  c.data.flip = parse_flag_field("flip", get("flip"), where);
  try {
    c.loss = parse_loss(get("loss"));
    c.features = parse_features(get("features"));
    if (has("negatives")) c.negatives = parse_negatives(get("negatives"));  // absent: image (the default)
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
  c.lambda_nce = parse_real_field("lambda_nce", get("lambda_nce"), where);
  c.lambda_gan = parse_real_field("lambda_gan", get("lambda_gan"), where);
  c.nce_idt = parse_flag_field("nce_idt", get("nce_idt"), where);
  c.flip_equivariance = has("flip_equivariance") && parse_flag_field("flip_equivariance", get("flip_equivariance"), where);
  integer("num_patches", true, c.num_patches);
  integer("ngf", true, c.ngf);
  integer("n_blocks", true, c.n_blocks);
  integer("ndf", true, c.ndf);
  integer("batch_size", true, c.batch_size);
  integer("steps", true, c.steps);
  integer("decay_steps", true, c.decay_steps);
  c.lr = parse_real_field("lr", get("lr"), where);
  c.beta1 = parse_real_field("beta1", get("beta1"), where);
  c.beta2 = parse_real_field("beta2", get("beta2"), where);
  integer("seed", true, c.seed);
  integer("input_nc", false, c.input_nc);  // absent: 3 (RGB), as in checkpoints written before the option
  integer("output_nc", false, c.output_nc);
  if (synthetic) c.data.load_size = c.data.crop_size = c.data.synthetic_size;  // as main() sets them
  c.data.seed = c.seed;
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{} holds a configuration the command line refuses: {}", where, e.what()));
  }
  return c;
}

}  // namespace trainer
