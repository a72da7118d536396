#pragma once

// Reading and writing `.pgt` tensor files, and loading their tensors into modules by name.
//
// A `.pgt` file is what scripts/convert_reference_weights.py writes from a checkpoint of the
// authors' Python code (PatchGCL's GNNLoss, CUT's PatchSampleF, DGL/PyG layers), and what the
// parity fixtures (tests/fixtures) are stored in. Layout: an ASCII header
//
//     PGT1
//     config <key> <value>
//     tensor <name> <f64|f32|i64> <ndim> <d0> ... <offset> <nbytes>
//     <empty line>
//
// followed by the raw little-endian, C-contiguous data of every tensor (offsets from the end of
// the header). No Python, pickle or zip is needed to read it.
//
//     auto file = patchgcl::io::read_tensor_file("patchgcl_F.pgt");
//     patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions::reference({256, 512, 512}));
//     patchgcl::io::load_parameters(*loss, file);   // names: embed_0.weight, gnn_0.lin.weight, ...

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <fstream>
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
  double config_double(const std::string& key) const { return std::stod(config_string(key)); }
  int64_t config_int(const std::string& key) const { return std::stoll(config_string(key)); }

  /// A comma-separated config entry ("3,5,8") as integers.
  std::vector<int64_t> config_ints(const std::string& key) const {
    std::vector<int64_t> out;
    std::stringstream in(config_string(key));
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
    return out;
  }
};

namespace detail {

inline bool little_endian_host() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

inline c10::ScalarType dtype_from_code(const std::string& code, const std::string& name) {
  if (code == "f64") return torch::kFloat64;
  if (code == "f32") return torch::kFloat32;
  if (code == "i64") return torch::kInt64;
  TORCH_CHECK(false, "TensorFile: tensor '", name, "' has unknown dtype '", code, "'");
}

inline const char* code_from_dtype(c10::ScalarType t, const std::string& name) {
  if (t == torch::kFloat64) return "f64";
  if (t == torch::kFloat32) return "f32";
  if (t == torch::kInt64) return "i64";
  TORCH_CHECK(false, "TensorFile: tensor '", name, "' has dtype ", t, "; only float64, float32, int64 are stored");
}

}  // namespace detail

/// Reads a `.pgt` file. Tensors come back on the CPU, in the dtype they were stored in.
inline TensorFile read_tensor_file(const std::string& path) {
  TORCH_CHECK(detail::little_endian_host(), "read_tensor_file: big-endian hosts are not supported");
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "read_tensor_file: cannot open '", path, "'");
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto end = raw.find("\n\n");
  TORCH_CHECK(end != std::string::npos, "read_tensor_file: '", path, "' has no header terminator");
  const char* blob = raw.data() + end + 2;
  const size_t blob_size = raw.size() - end - 2;

  TensorFile file;
  std::stringstream header(raw.substr(0, end));
  std::string line;
  std::getline(header, line);
  TORCH_CHECK(line == "PGT1", "read_tensor_file: '", path, "' is not a PGT1 file");
  while (std::getline(header, line)) {
    std::stringstream fields(line);
    std::string kind, name;
    fields >> kind >> name;
    if (kind == "config") {
      std::string value;
      fields >> value;
      file.config[name] = value;
      continue;
    }
    TORCH_CHECK(kind == "tensor", "read_tensor_file: bad header line '", line, "' in '", path, "'");
    std::string code;
    int64_t ndim = 0;
    fields >> code >> ndim;
    std::vector<int64_t> dims(static_cast<size_t>(ndim));
    for (auto& d : dims) fields >> d;
    uint64_t offset = 0, nbytes = 0;
    fields >> offset >> nbytes;
    TORCH_CHECK(!fields.fail(), "read_tensor_file: bad header line '", line, "' in '", path, "'");
    const auto dtype = detail::dtype_from_code(code, name);
    auto t = torch::empty(dims, torch::TensorOptions().dtype(dtype));
    TORCH_CHECK(static_cast<uint64_t>(t.nbytes()) == nbytes && offset + nbytes <= blob_size,
                "read_tensor_file: tensor '", name, "' does not fit its declared shape/extent in '", path, "'");
    if (nbytes) std::memcpy(t.data_ptr(), blob + offset, nbytes);
    file.tensors[name] = t;
  }
  return file;
}

/// Writes a `.pgt` file (tensors sorted by name, config by key: the same input gives the same bytes).
inline void write_tensor_file(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& config = {}) {
  TORCH_CHECK(detail::little_endian_host(), "write_tensor_file: big-endian hosts are not supported");
  std::ostringstream header;
  header << "PGT1\n";
  for (const auto& kv : config) header << "config " << kv.first << " " << kv.second << "\n";
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& kv : tensors) {
    auto t = kv.second.detach().to(torch::kCPU).contiguous();
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
  for (const auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  TORCH_CHECK(out, "write_tensor_file: write to '", path, "' failed");
}

/// Copies `file`'s tensors named `prefix + <parameter name>` into `module`'s parameters (cast to
/// each parameter's dtype and device). Strict: every parameter must be present with its shape,
/// and every tensor under `prefix` must name a parameter, so a renamed or missing weight is an error.
inline void load_parameters(torch::nn::Module& module, const TensorFile& file, const std::string& prefix = "",
                            bool strict = true) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& p : module.named_parameters(/*recurse=*/true)) {
    const auto name = prefix + p.key();
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      TORCH_CHECK(!strict, "load_parameters: the file has no tensor '", name, "' for parameter '", p.key(), "'");
      continue;
    }
    TORCH_CHECK(it->second.sizes() == p.value().sizes(), "load_parameters: '", name, "' has shape ",
                it->second.sizes(), " but parameter '", p.key(), "' has shape ", p.value().sizes());
    p.value().copy_(it->second.to(p.value().options()));
    used.insert(name);
  }
  if (!strict) return;
  for (const auto& kv : file.tensors) {
    if (kv.first.compare(0, prefix.size(), prefix) == 0) {
      TORCH_CHECK(used.count(kv.first), "load_parameters: tensor '", kv.first,
                  "' matches no parameter of the module (a different layout or layer count?)");
    }
  }
}

}  // namespace io
}  // namespace patchgcl
