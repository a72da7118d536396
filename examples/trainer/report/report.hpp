// The run's report: index.html, which shows the latest sample grid (rows of input | output |
// target-domain example, from samples/step_XXXXXX.png), one inline-SVG curve per logged loss and
// the configuration; rewritten at every sample interval from log.jsonl (log_file.hpp).
#pragma once

#include "trainer/data/image_io.hpp"
#include "trainer/report/log_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace trainer::report {

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
  std::string svg;
  auto out = std::back_inserter(svg);
  fmt::format_to(out,
                 "<svg xmlns='http://www.w3.org/2000/svg' width='{:g}' height='{:g}'>"
                 "<rect width='100%' height='100%' fill='#fff' stroke='#ccc'/>"
                 "<text x='{:g}' y='14' font-size='12' font-family='sans-serif'>{}</text>",
                 W, H, pad, key);
  if (pts.size() >= 2) {
    double x0 = pts.front().first, x1 = pts.back().first, y0 = pts[0].second, y1 = pts[0].second;
    for (auto& p : pts) y0 = std::min(y0, p.second), y1 = std::max(y1, p.second);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1e-6;
    svg += "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='";
    for (auto& p : pts)
      fmt::format_to(out, "{:g},{:g} ", pad + (p.first - x0) / (x1 - x0) * (W - 2 * pad),
                     H - pad - (p.second - y0) / (y1 - y0) * (H - 2 * pad));
    svg += "'/>";
    fmt::format_to(
        out,
        "<text x='2' y='{:g}' font-size='10' font-family='sans-serif'>{:.3g}</text>"
        "<text x='2' y='{:g}' font-size='10' font-family='sans-serif'>{:.3g}</text>"
        "<text x='{:g}' y='{:g}' font-size='10' font-family='sans-serif' text-anchor='end'>step {:.0f}</text>",
        pad, y1, H - pad, y0, W - pad, H - 8, x1);
  }
  return svg + "</svg>";
}

/// The section `evaluate --run` writes into a run folder (checkpoint_scores.hpp); write_index embeds it.
inline constexpr const char* kCheckpointScoresSection = "checkpoint_scores.html";

inline std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

/// Rewrites run/index.html from run/log.jsonl and the sample grids present in run/samples/;
/// the checkpoint scores of evaluate --run (run/checkpoint_scores.html) and `extra_html` (the
/// patch-graph pictures, explain_report.hpp) go before the configuration.
inline void write_index(const std::filesystem::path& run, const std::string& title, const std::string& config_text,
                        const std::vector<std::string>& loss_keys, const std::string& extra_html = "") {
  namespace fs = std::filesystem;
  auto records = read_log(run / "log.jsonl");
  std::vector<std::string> samples;
  if (fs::is_directory(run / "samples"))
    for (const auto& e : fs::directory_iterator(run / "samples"))
      if (e.path().extension() == ".png") samples.push_back(e.path().filename().string());
  std::sort(samples.rbegin(), samples.rend());
  std::string html;
  auto out = std::back_inserter(html);
  fmt::format_to(out,
                 "<!doctype html><html><head><meta charset='utf-8'><title>{0}</title>"
                 "<style>body{{font-family:sans-serif;margin:20px}} img{{image-rendering:pixelated}} "
                 "figure{{display:inline-block;margin:6px}} .curves svg{{margin:4px}}</style></head><body>"
                 "<h1>{0}</h1>",
                 html_escape(title));
  if (!records.empty()) {
    const auto& last = records.back();
    fmt::format_to(out, "<p>step {:g}", last.count("step") ? last.at("step") : 0.0);
    if (last.count("epoch")) fmt::format_to(out, ", epoch {:g}", last.at("epoch"));  // none in single-image mode
    html += "</p>";
  }
  html += "<h2>Losses</h2><div class='curves'>";
  for (const auto& k : loss_keys) html += svg_curve(records, k);
  html += "</div><h2>Samples (input | output | target-domain example)</h2>";
  for (size_t i = 0; i < samples.size(); ++i) {
    fmt::format_to(out,
                   "<figure><img src='samples/{0}' onload='this.width=this.naturalWidth*{1}'>"
                   "<figcaption>{0}</figcaption></figure>",
                   samples[i], i == 0 ? 3 : 1);
    if (i == 0) html += "<br>";
  }
  if (fs::is_regular_file(run / kCheckpointScoresSection)) {  // written by evaluate --run, embedded as it is
    std::ifstream in(run / kCheckpointScoresSection, std::ios::binary);
    html.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  html += extra_html;
  fmt::format_to(out, "<h2>Configuration</h2><pre>{}</pre></body></html>\n", html_escape(config_text));
  auto tmp = run / "index.html.tmp";
  std::ofstream(tmp) << html;
  fs::rename(tmp, run / "index.html");
}

}  // namespace trainer::report
