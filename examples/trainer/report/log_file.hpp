// The run's log.jsonl: one flat JSON object of numbers per logged step, appended as the run goes,
// read back by the report and by a resumed run (which first drops the lines it will log again).
#pragma once

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace trainer::report {

using Record = std::map<std::string, double>;

/// Keys of a log line, in the order they are written.
inline const std::vector<std::string>& log_keys() {
  static const std::vector<std::string> keys = {"step",     "epoch",      "lr",     "loss_D",   "loss_G_GAN",
                                                "loss_NCE", "loss_NCE_Y", "loss_G", "it_per_s", "elapsed_s"};
  return keys;
}

/// Flat JSON object with numeric values -> Record; other value types are ignored.
inline Record parse_record(const std::string& line) {
  Record r;
  size_t pos = 0;
  while ((pos = line.find('"', pos)) != std::string::npos) {
    size_t end = line.find('"', pos + 1);
    if (end == std::string::npos) break;
    std::string key = line.substr(pos + 1, end - pos - 1);
    size_t colon = line.find(':', end);
    if (colon == std::string::npos) break;
    const char* start = line.c_str() + colon + 1;
    char* stop = nullptr;
    double v = std::strtod(start, &stop);
    if (stop != start) r[key] = v;
    pos = (stop != start) ? static_cast<size_t>(stop - line.c_str()) : colon + 1;
  }
  return r;
}

/// The keys of `order` that `r` has, with 6 significant digits.
inline std::string to_json(const Record& r, const std::vector<std::string>& order) {
  std::string out = "{";
  for (const auto& k : order) {
    auto it = r.find(k);
    if (it == r.end()) continue;
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{:.6g}", out.size() > 1 ? "," : "", k, it->second);
  }
  return out + "}";
}

inline std::vector<Record> read_log(const std::filesystem::path& path) {
  std::vector<Record> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(parse_record(line));
  return records;
}

/// Drops the records logged after `step` (a resumed run re-logs them), rewriting atomically.
inline void truncate_log(const std::filesystem::path& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    auto r = parse_record(line);
    if (!line.empty() && r.count("step") && r["step"] <= static_cast<double>(step)) kept += line + "\n";
  }
  in.close();
  auto tmp = std::filesystem::path(path.string() + ".tmp");
  std::ofstream(tmp) << kept;
  std::filesystem::rename(tmp, path);
}

}  // namespace trainer::report
