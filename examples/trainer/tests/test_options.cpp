// Each row of the option table (config_options()) as every consumer sees it: `train --help` names
// it, the command line sets it, config.txt and the checkpoint's configuration hold it and read it
// back, a resume under another value is refused, and where it does not apply it is refused with the
// row's reason. The cases iterate the table itself: a new row is checked by being added.
#include "trainer/tests/fault_helpers.hpp"

#include <sstream>

using namespace trainer_tests;

namespace {

using Spec = OptionSpec<TrainConfig>;

/// The tiny configuration in each data mode: the embedded dataset, folders, one image per domain.
std::vector<TrainConfig> mode_configs() {
  TrainConfig synthetic = tiny_config();
  TrainConfig folders = synthetic;
  folders.data.root = "some/folder";
  folders.data.load_size = 36;
  TrainConfig single = folders;
  single.data.single_image = true;
  return {synthetic, folders, single};
}

/// The first mode configuration `spec` applies to.
TrainConfig applying(const Spec& spec) {
  for (const auto& c : mode_configs())
    if (spec.applies(c)) return c;
  FAIL(spec.flag() << " applies in none of the data modes");
  return {};
}

/// Texts to try as another value of `spec`, near its value `current`.
std::vector<std::string> candidates(const Spec& spec, const std::string& current) {
  switch (spec.kind) {
    case OptionKind::kFlag:
      return {current == "1" ? "0" : "1"};
    case OptionKind::kChoice:
      return spec.choices;
    case OptionKind::kText:
      return {current + "_other"};
    case OptionKind::kInteger: {
      const auto v = patchgcl::detail::parse_integer<int64_t>(spec.key, current);
      return {std::to_string(v + 4), std::to_string(v - 4), std::to_string(v + 1), "1", "3"};
    }
    case OptionKind::kReal: {
      const double v = option_detail::read_real(current, spec.key);
      return {format_number(v * 2), format_number(v / 2), "0.5", "0.25", "2"};
    }
  }
  return {};
}

/// `base` with `spec` read from `text`, and what follows from it.
TrainConfig with_value(const TrainConfig& base, const Spec& spec, const std::string& text) {
  TrainConfig c = base;
  spec.read(c, text, spec.flag());
  c.derive_data_options();
  return c;
}

/// A text of `spec` that makes `base` a valid configuration the option still applies to, and that a
/// checkpoint holds differently from `base`'s value; "" when no candidate does.
std::string other_value(const Spec& spec, const TrainConfig& base) {
  for (const auto& text : candidates(spec, spec.text(base))) {
    const TrainConfig c = with_value(base, spec, text);
    try {
      c.validate();
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (spec.applies(c) && spec.text(c.resolved()) != spec.text(base.resolved())) return text;
  }
  return {};
}

/// The names of `spec` on the command line, without CLI11's '!' of a negating flag.
std::vector<std::pair<std::string, bool>> names_of(const Spec& spec) {
  std::vector<std::pair<std::string, bool>> out;  // (name, sets the flag to 0)
  for (size_t a = 0; a <= spec.names.size();) {
    const size_t b = std::min(spec.names.find(',', a), spec.names.size());
    const std::string name = spec.names.substr(a, b - a);
    out.emplace_back(name[0] == '!' ? name.substr(1) : name, name[0] == '!');
    a = b + 1;
  }
  return out;
}

/// The command-line arguments that set `spec` to `text`.
std::vector<std::string> arguments(const Spec& spec, const std::string& text) {
  if (spec.kind != OptionKind::kFlag) return {spec.flag(), text};
  for (const auto& [name, negating] : names_of(spec))
    if ((negating ? "0" : "1") == text) return {name};
  FAIL(spec.flag() << " has no name that sets it to " << text);
  return {};
}

/// `args` parsed by the table's options on a fresh command, then read into `base`.
TrainConfig parsed(const TrainConfig& base, const std::vector<std::string>& args) {
  CLI::App app("options");
  std::map<std::string, std::string> given;
  commands::add_config_options(app, given);
  std::vector<const char*> argv = {"train"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  TrainConfig c = base;
  commands::read_given(given, c);
  return c;
}

/// `text` without its line `key=...`.
std::string without_line(const std::string& text, const std::string& key) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + "=", 0) != 0) out += line + "\n";
  return out;
}

}  // namespace

TEST_CASE("Every option of the table is in --help, on the command line, in config.txt and in the resume check",
          "[cli][options]") {
  CLI::App app("options");
  std::map<std::string, std::string> given;
  commands::add_config_options(app, given);
  const std::string help = app.help();
  const auto binary_help = run_trainer({"train", "--help"}, TempDir("options_help").path / "help.log");
  CHECK(binary_help.status == 0);
  REQUIRE(config_options().size() >= 28);
  for (const auto& spec : config_options()) {
    INFO("option " << spec.flag() << " (config.txt: " << spec.key << ")");
    for (const auto& name : names_of(spec)) {
      CHECK_THAT(help, Catch::Contains(name.first));
      CHECK_THAT(binary_help.output, Catch::Contains(name.first));
    }
    CHECK_THAT(binary_help.output, Catch::Contains(spec.help));
    const TrainConfig base = applying(spec);
    const std::string text = other_value(spec, base);
    REQUIRE(!text.empty());
    INFO("another value: " << text);
    // The command line sets it.
    const TrainConfig changed = with_value(base, spec, text);
    CHECK(spec.text(parsed(base, arguments(spec, text))) == spec.text(changed));
    CHECK_THAT(help, Catch::Contains(spec.help));
    // config.txt and the checkpoint hold it, and read it back.
    const std::string saved = changed.serialize();
    const std::string value = spec.text(changed.resolved());
    CHECK_THAT("\n" + saved, Catch::Contains("\n" + spec.key + "=" + value + "\n"));
    const TrainConfig back = parse_config_text(saved, "config.txt");
    CHECK(spec.text(back.resolved()) == value);
    CHECK(back.differences(changed).empty());
    CHECK(back.serialize() == saved);
    // Every option a checkpoint holds is compared on resume: the other value is refused by name.
    const std::string line =
        fmt::format("{}: {} (checkpoint) vs {} (command line)", spec.key, spec.text(base.resolved()), value);
    CHECK_THAT(base.differences(changed), Catch::VectorContains(line));
    CHECK_THROWS_WITH(checkpoint::require_same_config("r/ckpt.safetensors", base, changed), Catch::Contains(line));
  }
}

TEST_CASE("A configuration without an option's line is refused or read as the default, as the option's row says",
          "[cli][options]") {
  for (const auto& spec : config_options()) {
    INFO("option " << spec.flag() << " (config.txt: " << spec.key << ")");
    const TrainConfig base = applying(spec);
    const TrainConfig changed = with_value(base, spec, other_value(spec, base));
    const std::string text = without_line(changed.serialize(), spec.key);
    if (spec.saved == Saved::kAlways) {
      CHECK_THROWS_WITH(parse_config_text(text, "config.txt"),
                        Catch::Contains("config.txt: configuration lacks the field '" + spec.key + "'"));
    } else {
      // Held only when not the default: the default is not written, and an absent line reads as it.
      CHECK(spec.text(parse_config_text(text, "config.txt")) == spec.text(TrainConfig{}));
      const TrainConfig at_default = with_value(base, spec, spec.text(TrainConfig{}));
      CHECK_THAT("\n" + at_default.serialize(), !Catch::Contains("\n" + spec.key + "="));
    }
  }
}

TEST_CASE("An option given where it does not apply is refused with its row's reason; where it applies it is taken",
          "[cli][options]") {
  for (const auto& spec : config_options()) {
    for (const auto& config : mode_configs()) {
      INFO("option " << spec.flag() << " with --data " << config.data.root
                     << (config.data.single_image ? " --single-image" : ""));
      commands::TrainOptions o;
      o.config = config;
      const auto given = [&](const std::string& name) { return name == spec.flag(); };
      if (spec.applies(config)) {
        CHECK_NOTHROW(commands::refuse_ignored_options(given, o, false));
      } else {
        CHECK_THROWS_WITH(commands::refuse_ignored_options(given, o, false),
                          spec.flag() + " has no effect " + spec.unused(config));
      }
    }
  }
}

TEST_CASE("Option values of the wrong kind are refused naming the option, the expected and the given value",
          "[cli][options]") {
  const TrainConfig base = tiny_config();
  CHECK_THROWS_WITH(parsed(base, {"--steps", "abc"}), "--steps must be an integer (got 'abc')");
  CHECK_THROWS_WITH(parsed(base, {"--batch-size", "99999999999"}),
                    "--batch-size must be an integer in [-2147483648, 2147483647] (got '99999999999')");
  CHECK_THROWS_WITH(parsed(base, {"--seed", "-1"}),
                    "--seed must be an integer in [0, 18446744073709551615] (got '-1')");
  CHECK_THROWS_WITH(parsed(base, {"--lr", "fast"}), "--lr must be a number (got 'fast')");
  CHECK_THROWS_AS(parsed(base, {"--loss", "triplet"}), CLI::ValidationError);
  CHECK(parsed(base, {"--steps", "+12", "--no-nce-idt", "--lambda", "0.5"}).serialize() == [&] {
    TrainConfig c = base;
    c.steps = 12;
    c.nce_idt = false;
    c.lambda_nce = 0.5;
    return c.serialize();
  }());
}
