// The run folder: log.jsonl (one JSON object per logged step), samples/step_XXXXXX.png
// (rows of input | output | target-domain example) and index.html, which shows the latest
// samples and one inline-SVG curve per loss, regenerated at every sample interval.
#pragma once

#include "image_io.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace trainer::report {

using Record = std::map<std::string, double>;

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

inline std::string to_json(const Record& r, const std::vector<std::string>& order) {
  std::string out = "{";
  for (const auto& k : order) {
    auto it = r.find(k);
    if (it == r.end()) continue;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", it->second);
    out += (out.size() > 1 ? "," : "") + ("\"" + k + "\":") + buf;
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

/// Rows of equally sized images side by side, 2 px white gutters.
inline Image grid(const std::vector<std::vector<Image>>& rows) {
  const int gap = 2;
  int w = 0, h = 0;
  for (const auto& row : rows) {
    int rw = 0, rh = 0;
    for (const auto& img : row) rw += img.width + gap, rh = std::max(rh, img.height);
    w = std::max(w, rw + gap);
    h += rh + gap;
  }
  Image out;
  out.width = w;
  out.height = h + gap;
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  int y0 = gap;
  for (const auto& row : rows) {
    int x0 = gap, rh = 0;
    for (const auto& img : row) {
      for (int y = 0; y < img.height; ++y)
        std::copy_n(&img.pixels[static_cast<size_t>(y) * img.width * 3], static_cast<size_t>(img.width) * 3,
                    &out.pixels[(static_cast<size_t>(y0 + y) * out.width + x0) * 3]);
      x0 += img.width + gap;
      rh = std::max(rh, img.height);
    }
    y0 += rh + gap;
  }
  return out;
}

/// One small SVG line chart of `key` over `step`.
inline std::string svg_curve(const std::vector<Record>& records, const std::string& key) {
  const double W = 320, H = 160, pad = 30;
  std::vector<std::pair<double, double>> pts;
  for (const auto& r : records) {
    auto s = r.find("step"), v = r.find(key);
    if (s != r.end() && v != r.end() && std::isfinite(v->second)) pts.emplace_back(s->second, v->second);
  }
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "'>"
      << "<rect width='100%' height='100%' fill='#fff' stroke='#ccc'/>"
      << "<text x='" << pad << "' y='14' font-size='12' font-family='sans-serif'>" << key << "</text>";
  if (pts.size() >= 2) {
    double x0 = pts.front().first, x1 = pts.back().first, y0 = pts[0].second, y1 = pts[0].second;
    for (auto& p : pts) y0 = std::min(y0, p.second), y1 = std::max(y1, p.second);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1e-6;
    svg << "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='";
    for (auto& p : pts)
      svg << pad + (p.first - x0) / (x1 - x0) * (W - 2 * pad) << ","
          << H - pad - (p.second - y0) / (y1 - y0) * (H - 2 * pad) << " ";
    svg << "'/>";
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "<text x='2' y='%g' font-size='10' font-family='sans-serif'>%.3g</text>"
                  "<text x='2' y='%g' font-size='10' font-family='sans-serif'>%.3g</text>"
                  "<text x='%g' y='%g' font-size='10' font-family='sans-serif' text-anchor='end'>step %.0f</text>",
                  pad, y1, H - pad, y0, W - pad, H - 8, x1);
    svg << buf;
  }
  svg << "</svg>";
  return svg.str();
}

inline std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

/// Rewrites run/index.html from run/log.jsonl and the sample grids present in run/samples/.
inline void write_index(const std::filesystem::path& run, const std::string& title, const std::string& config_text,
                        const std::vector<std::string>& loss_keys) {
  namespace fs = std::filesystem;
  auto records = read_log(run / "log.jsonl");
  std::vector<std::string> samples;
  if (fs::is_directory(run / "samples"))
    for (const auto& e : fs::directory_iterator(run / "samples"))
      if (e.path().extension() == ".png") samples.push_back(e.path().filename().string());
  std::sort(samples.rbegin(), samples.rend());
  std::ostringstream html;
  html << "<!doctype html><html><head><meta charset='utf-8'><title>" << html_escape(title) << "</title>"
       << "<style>body{font-family:sans-serif;margin:20px} img{image-rendering:pixelated} "
          "figure{display:inline-block;margin:6px} .curves svg{margin:4px}</style></head><body>"
       << "<h1>" << html_escape(title) << "</h1>";
  if (!records.empty()) {
    const auto& last = records.back();
    html << "<p>step " << (last.count("step") ? last.at("step") : 0) << ", epoch "
         << (last.count("epoch") ? last.at("epoch") : 0) << "</p>";
  }
  html << "<h2>Losses</h2><div class='curves'>";
  for (const auto& k : loss_keys) html << svg_curve(records, k);
  html << "</div><h2>Samples (input | output | target-domain example)</h2>";
  for (size_t i = 0; i < samples.size(); ++i) {
    int scale = i == 0 ? 3 : 1;
    html << "<figure><img src='samples/" << samples[i] << "' onload='this.width=this.naturalWidth*" << scale
         << "'><figcaption>" << samples[i] << "</figcaption></figure>";
    if (i == 0) html << "<br>";
  }
  html << "<h2>Configuration</h2><pre>" << html_escape(config_text) << "</pre></body></html>\n";
  auto tmp = run / "index.html.tmp";
  std::ofstream(tmp) << html.str();
  fs::rename(tmp, run / "index.html");
}

}  // namespace trainer::report
