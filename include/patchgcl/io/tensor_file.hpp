#pragma once

// Reading and writing `.pgt` tensor files, and loading their tensors into modules by name.
//
// `.pgt` is the format of earlier versions, still read for the files users have, and the one the
// parity fixtures (tests/fixtures) are stored in. Weights are written as safetensors now
// (io/safetensors.hpp: read_safetensors, write_safetensors, and read_weights and
// load_parameters(module, path) for either format). Layout: an ASCII header
//
//     PGT1
//     config <key> <value>
//     tensor <name> <f64|f32|i64> <ndim> <d0> ... <offset> <nbytes>
//     <empty line>
//
// followed by the raw little-endian, C-contiguous data of every tensor (offsets from the end of
// the header). No Python, pickle or zip is needed to read it.
//
// Files are untrusted input: read_tensor_file checks every header field against the file's size
// before it allocates anything, and refuses what does not hold with a TensorFileError naming the
// file, the line and the field (the rules: io/pgt_format.hpp; docs/reliability.md, ".pgt reader").
//
//     auto file = patchgcl::io::read_tensor_file("patchgcl_F.pgt");
//     patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions::reference({256, 512, 512}));
//     patchgcl::io::load_parameters(*loss, file);   // names: embed_0.weight, gnn_0.lin.weight, ...

#include <patchgcl/detail/integer.hpp>
#include <patchgcl/io/pgt_format.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <locale>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace patchgcl {
namespace io {

/// The tensors and `config` entries of one `.pgt` file.
struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> config;

  bool contains(const std::string& name) const { return tensors.count(name) != 0; }

  const torch::Tensor& at(const std::string& name) const {
    auto it = tensors.find(name);
    TORCH_CHECK(it != tensors.end(), "TensorFile: no tensor named '", name, "'");
    return it->second;
  }

  const std::string& config_string(const std::string& key) const {
    auto it = config.find(key);
    TORCH_CHECK(it != config.end(), "TensorFile: no config entry '", key, "'");
    return it->second;
  }

  /// A finite decimal number ("0.07", "-1e-3"); anything else is an error naming the entry.
  double config_double(const std::string& key) const {
    const auto& text = config_string(key);
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    double value = 0;
    in >> std::noskipws >> value;
    TORCH_CHECK(!text.empty() && !in.fail() && in.peek() == std::char_traits<char>::eof() && std::isfinite(value),
                "TensorFile: config entry '", key, "' must be a finite decimal number, got '", text, "'");
    return value;
  }

  /// A decimal integer in int64 ("16", "-2"); anything else is an error naming the entry.
  int64_t config_int(const std::string& key) const {
    const auto& text = config_string(key);
    int64_t value = 0;
    TORCH_CHECK(read_int64(text, value), "TensorFile: config entry '", key,
                "' must be a decimal integer in int64, got '", text, "'");
    return value;
  }

  /// A comma-separated config entry ("3,5,8") as integers.
  std::vector<int64_t> config_ints(const std::string& key) const {
    const auto& text = config_string(key);
    std::vector<int64_t> out;
    for (size_t a = 0;;) {
      const size_t b = text.find(',', a);
      const auto item = text.substr(a, b == std::string::npos ? std::string::npos : b - a);
      int64_t value = 0;
      TORCH_CHECK(read_int64(item, value), "TensorFile: config entry '", key,
                  "' must be comma-separated decimal integers in int64, got '", text, "'");
      out.push_back(value);
      if (b == std::string::npos) break;
      a = b + 1;
    }
    return out;
  }

 private:
  /// A signed decimal integer ("-3", "42") in int64 (patchgcl::detail::read_integer).
  static bool read_int64(const std::string& text, int64_t& value) {
    return patchgcl::detail::read_integer(text, std::numeric_limits<int64_t>::min(),
                                          std::numeric_limits<int64_t>::max(),
                                          value) == patchgcl::detail::IntegerText::kOk;
  }
};

namespace detail {

inline bool little_endian_host() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

inline c10::ScalarType scalar_type_of(PgtDtype d) {
  switch (d) {
    case PgtDtype::kF64:
      return torch::kFloat64;
    case PgtDtype::kF32:
      return torch::kFloat32;
    case PgtDtype::kI64:
      return torch::kInt64;
  }
  return torch::kFloat64;
}

inline const char* code_from_dtype(c10::ScalarType t, const std::string& name) {
  if (t == torch::kFloat64) return "f64";
  if (t == torch::kFloat32) return "f32";
  if (t == torch::kInt64) return "i64";
  TORCH_CHECK(false, "TensorFile: tensor '", name, "' has dtype ", t, "; only float64, float32, int64 are stored");
}

/// A tensor name, config key or value the header can hold: one token of printable ASCII.
inline void check_token(const std::string& what, const std::string& token) {
  bool ok = !token.empty();
  for (char c : token) ok = ok && c > 0x20 && c < 0x7f;
  TORCH_CHECK(ok, "write_tensor_file: ", what, " ", pgt_quote(token),
              " must be non-empty printable ASCII without spaces");
}

}  // namespace detail

/// Parses the bytes of a `.pgt` file (`path` only names it in errors). Tensors come back on the
/// CPU, in the dtype they were stored in. Throws TensorFileError for a file it refuses.
inline TensorFile parse_tensor_file(const std::string& bytes, const std::string& path = "<memory>") {
  TORCH_CHECK(detail::little_endian_host(), "read_tensor_file: big-endian hosts are not supported");
  const auto contents = detail::parse_pgt(bytes.data(), bytes.size(), path);
  TensorFile file;
  for (const auto& kv : contents.config) file.config.emplace(kv.first, kv.second);
  for (const auto& t : contents.tensors) {
    // Checked by parse_pgt: the shape's byte count is t.nbytes, and those bytes lie in `bytes`.
    auto tensor = torch::empty(t.shape, torch::TensorOptions().dtype(detail::scalar_type_of(t.dtype)));
    if (t.nbytes > 0) std::memcpy(tensor.data_ptr(), t.data, static_cast<size_t>(t.nbytes));
    file.tensors.emplace(t.name, std::move(tensor));
  }
  return file;
}

/// Reads a `.pgt` file. Tensors come back on the CPU, in the dtype they were stored in. Throws
/// TensorFileError (file, line, field) for a file it cannot open or refuses.
inline TensorFile read_tensor_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TensorFileError(path, 0, "file", "cannot open it");
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw TensorFileError(path, 0, "file", "reading it failed");
  return parse_tensor_file(raw, path);
}

/// Writes a `.pgt` file (tensors sorted by name, config by key: the same input gives the same bytes).
/// Names, keys and values must be single tokens of printable ASCII, so that the file reads back.
inline void write_tensor_file(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& config = {}) {
  TORCH_CHECK(detail::little_endian_host(), "write_tensor_file: big-endian hosts are not supported");
  std::ostringstream header;
  header << "PGT1\n";
  for (const auto& kv : config) {
    detail::check_token("config key", kv.first);
    detail::check_token("the value of config key '" + kv.first + "'", kv.second);
    header << "config " << kv.first << " " << kv.second << "\n";
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& kv : tensors) {
    detail::check_token("tensor name", kv.first);
    auto t = kv.second.detach().to(torch::kCPU).contiguous();
    TORCH_CHECK(t.dim() <= kPgtMaxDims, "write_tensor_file: tensor '", kv.first, "' has ", t.dim(),
                " dimensions; at most ", kPgtMaxDims, " are stored");
    header << "tensor " << kv.first << " " << detail::code_from_dtype(t.scalar_type(), kv.first) << " " << t.dim();
    for (auto d : t.sizes()) header << " " << d;
    header << " " << offset << " " << t.nbytes() << "\n";
    offset += t.nbytes();
    data.push_back(t);
  }
  header << "\n";
  std::ofstream out(path, std::ios::binary);
  TORCH_CHECK(out, "write_tensor_file: cannot open '", path, "'");
  const auto text = header.str();
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : data)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  out.flush();
  TORCH_CHECK(out, "write_tensor_file: write to '", path, "' failed");
}

/// How load_parameters matches a file against a module.
struct LoadParametersOptions {
  /// Tensors are looked up as `prefix + <parameter name>`.
  TORCH_ARG(std::string, prefix) = "";
  /// Every parameter must be in the file, and every tensor under `prefix` must name a parameter.
  TORCH_ARG(bool, strict) = true;
  /// Load NaN and Inf values instead of refusing them (after the cast to the parameter's dtype).
  TORCH_ARG(bool, allow_non_finite) = false;
};

/// Copies `file`'s tensors named `prefix + <parameter name>` into `module`'s parameters (cast to
/// each parameter's device and precision). Refused, with the parameter, the expected and the actual
/// value named, and before any parameter is changed:
/// - a missing tensor, or (strict) a tensor under `prefix` that names no parameter;
/// - a shape that differs from the parameter's;
/// - a dtype of another kind: integer data for a floating-point parameter or the reverse (a cast
///   between floating-point precisions, f64 data for a float32 module, is allowed);
/// - NaN or Inf in the values as cast (so an f64 value beyond float32's range is refused too),
///   unless `allow_non_finite`.
inline void load_parameters(torch::nn::Module& module, const TensorFile& file, const LoadParametersOptions& options) {
  torch::NoGradGuard no_grad;
  const auto& prefix = options.prefix();
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (parameter, value in its dtype)
  for (auto& p : module.named_parameters(/*recurse=*/true)) {
    const auto name = prefix + p.key();
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      TORCH_CHECK(!options.strict(), "load_parameters: the file has no tensor '", name, "' for parameter '", p.key(),
                  "'");
      continue;
    }
    const auto& value = it->second;
    const auto& param = p.value();
    TORCH_CHECK(value.sizes() == param.sizes(), "load_parameters: '", name, "' has shape ", value.sizes(),
                " but parameter '", p.key(), "' has shape ", param.sizes());
    const bool value_float = c10::isFloatingType(value.scalar_type());
    const bool param_float = c10::isFloatingType(param.scalar_type());
    TORCH_CHECK(value_float == param_float && (param_float || value.scalar_type() == param.scalar_type()),
                "load_parameters: parameter '", p.key(), "' has dtype ", param.scalar_type(), " but tensor '", name,
                "' has dtype ", value.scalar_type(), " (only floating-point precisions are converted)");
    auto cast = value.to(param.scalar_type());
    if (!options.allow_non_finite() && param_float) {
      const auto finite = torch::isfinite(cast);
      const int64_t bad = cast.numel() - finite.sum().item<int64_t>();
      if (bad > 0) {
        const int64_t first = (~finite).reshape(-1).nonzero()[0][0].item<int64_t>();
        const bool was_finite = torch::isfinite(value).all().item<bool>();
        TORCH_CHECK(false, "load_parameters: tensor '", name, "' for parameter '", p.key(), "' has ", bad,
                    " non-finite value(s) (first at flat index ", first, ": ", cast.reshape(-1)[first].item<double>(),
                    was_finite ? std::string(", out of the range of ") + c10::toString(param.scalar_type()) : "",
                    "); LoadParametersOptions().allow_non_finite(true) loads them anyway");
      }
    }
    copies.emplace_back(param, std::move(cast));
    used.insert(name);
  }
  if (options.strict()) {
    for (const auto& kv : file.tensors) {
      if (kv.first.compare(0, prefix.size(), prefix) == 0) {
        TORCH_CHECK(used.count(kv.first), "load_parameters: tensor '", kv.first,
                    "' matches no parameter of the module (a different layout or layer count?)");
      }
    }
  }
  for (auto& c : copies) c.first.copy_(c.second);
}

/// load_parameters with `LoadParametersOptions().prefix(prefix).strict(strict)`.
inline void load_parameters(torch::nn::Module& module, const TensorFile& file, const std::string& prefix = "",
                            bool strict = true) {
  load_parameters(module, file, LoadParametersOptions().prefix(prefix).strict(strict));
}

}  // namespace io
}  // namespace patchgcl
