// What `evaluate --run` leaves in a run folder (eval/checkpoint_sweep.hpp scores the checkpoints):
//   checkpoint_scores.csv    step,fid,kid,kid_std,checkpoint, one row per checkpoint, in step order;
//   checkpoint_scores.json   the same, the feature network, the mode and the best checkpoint;
//   checkpoint_scores.html   the index.html section: FID and KID over the steps (inline SVG), the
//                            table, the best row marked; write_index (report.hpp) embeds it as it is;
//   best.safetensors         the checkpoint with the lowest FID (a hard link, or a copy), for
//                            `translate --checkpoint RUN/best.safetensors`.
// Every file is written atomically (train/atomic_file.hpp).
#pragma once

#include "trainer/eval/checkpoint_sweep.hpp"
#include "trainer/report/report.hpp"
#include "trainer/train/atomic_file.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::report {

/// A file name relative to the run folder when it is inside it.
inline std::string run_relative(const std::filesystem::path& run_dir, const std::filesystem::path& file) {
  const auto rel = file.lexically_relative(run_dir);
  return rel.empty() || *rel.begin() == ".." ? file.string() : rel.string();
}

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += c;
  }
  return out + "\"";
}

inline std::string checkpoint_row_json(const std::filesystem::path& run_dir, const evaluation::CheckpointScore& r) {
  return fmt::format("{{\"step\":{},\"fid\":{:.6f},\"kid\":{:.6f},\"kid_std\":{:.6f},\"checkpoint\":{}}}", r.step,
                     r.scores.fid, r.scores.kid.mean, r.scores.kid.std, json_string(run_relative(run_dir, r.file)));
}

/// The JSON of the whole table: what `evaluate --run` prints and writes to checkpoint_scores.json.
inline std::string checkpoint_table_json(const std::filesystem::path& run_dir, const evaluation::CheckpointTable& t,
                                         const std::string& features) {
  std::string rows;
  for (const auto& r : t.rows) rows += (rows.empty() ? "" : ",") + checkpoint_row_json(run_dir, r);
  const auto& any = t.rows.at(t.best).scores;
  return fmt::format(
      "{{\"features\":{},\"mode\":\"{}\",\"feature_dim\":{},\"translated\":{},\"real\":{},"
      "\"fid_rank_deficient\":{},\"best\":{},\"checkpoints\":[{}]}}",
      json_string(features), any.mode, any.dim, any.translated, any.real, any.rank_deficient ? "true" : "false",
      checkpoint_row_json(run_dir, t.rows.at(t.best)), rows);
}

/// The index.html section: FID and KID over the steps and the table, the best row in bold.
inline std::string checkpoint_scores_html(const std::filesystem::path& run_dir, const evaluation::CheckpointTable& t,
                                          const std::string& features) {
  std::vector<Record> records;
  for (const auto& r : t.rows)
    records.push_back({{"step", double(r.step)}, {"FID", r.scores.fid}, {"KID", r.scores.kid.mean}});
  const auto& best = t.rows.at(t.best);
  std::string html;
  auto out = std::back_inserter(html);
  fmt::format_to(out,
                 "<h2>Checkpoints: FID and KID (evaluate --run, features {})</h2><p>best: step {} (FID {:.4g}, "
                 "KID {:.4g}), <code>best.safetensors</code></p><div class='curves'>",
                 html_escape(features), best.step, best.scores.fid, best.scores.kid.mean);
  html += svg_curve(records, "FID") + svg_curve(records, "KID");
  html += "</div><table><tr><th>step</th><th>FID</th><th>KID</th><th>KID std</th><th>checkpoint</th></tr>";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& r = t.rows[i];
    fmt::format_to(out, "<tr{}><td>{}</td><td>{:.4f}</td><td>{:.6f}</td><td>{:.6f}</td><td>{}</td></tr>",
                   i == t.best ? " style='font-weight:bold'" : "", r.step, r.scores.fid, r.scores.kid.mean,
                   r.scores.kid.std, html_escape(run_relative(run_dir, r.file)));
  }
  return html + "</table>";
}

/// Writes checkpoint_scores.{csv,json,html} and best.safetensors into `run_dir`.
inline void write_checkpoint_scores(const std::filesystem::path& run_dir, const evaluation::CheckpointTable& t,
                                    const std::string& features) {
  namespace fs = std::filesystem;
  std::string csv = "step,fid,kid,kid_std,checkpoint\n";
  for (const auto& r : t.rows)
    csv += fmt::format("{},{:.6f},{:.6f},{:.6f},{}\n", r.step, r.scores.fid, r.scores.kid.mean, r.scores.kid.std,
                       run_relative(run_dir, r.file));
  write_file_atomically(run_dir / "checkpoint_scores.csv", csv);
  write_file_atomically(run_dir / "checkpoint_scores.json", checkpoint_table_json(run_dir, t, features) + "\n");
  write_file_atomically(run_dir / kCheckpointScoresSection, checkpoint_scores_html(run_dir, t, features));
  const fs::path best = run_dir / "best.safetensors", tmp = run_dir / "best.safetensors.tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(t.rows.at(t.best).file, tmp, ec);
  if (ec) fs::copy_file(t.rows.at(t.best).file, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, best);
}

}  // namespace trainer::report
