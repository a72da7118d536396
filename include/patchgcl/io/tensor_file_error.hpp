#pragma once

// The error every reader of weights files throws for a file it refuses (io/pgt_format.hpp,
// io/safetensors_format.hpp), and how text from the file appears in its message.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace patchgcl {
namespace io {

/// What read_tensor_file (and read_safetensors, io/safetensors.hpp) throws for a file it refuses:
/// `what()` reads `read_tensor_file: 'FILE' line N, field 'FIELD': PROBLEM`. line() is 0 for a
/// problem of the whole file (cannot open it, bytes after the last tensor) and for formats without
/// lines (safetensors, whose errors start with `read_safetensors:`).
class TensorFileError : public std::runtime_error {
 public:
  TensorFileError(const std::string& path, int64_t line, const std::string& field, const std::string& problem)
      : TensorFileError("read_tensor_file", path, line, field, problem) {}
  /// The same, for the reader named `reader` (the first word of the message).
  TensorFileError(const std::string& reader, const std::string& path, int64_t line, const std::string& field,
                  const std::string& problem)
      : std::runtime_error(format(reader, path, line, field, problem)), path_(path), line_(line), field_(field) {}

  const std::string& path() const { return path_; }
  int64_t line() const { return line_; }
  const std::string& field() const { return field_; }

 private:
  static std::string format(const std::string& reader, const std::string& path, int64_t line, const std::string& field,
                            const std::string& problem) {
    std::ostringstream out;
    out << reader << ": '" << path << "'";
    if (line > 0) out << " line " << line;
    out << ", field '" << field << "': " << problem;
    return out.str();
  }

  std::string path_;
  int64_t line_;
  std::string field_;
};

namespace detail {

/// Text from a file in an error message: at most `limit` bytes, non-printable bytes and `\` as \xNN.
inline std::string printable(const std::string& text, size_t limit) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

/// A token shown in an error message, quoted: at most 40 characters (`printable`).
inline std::string pgt_quote(const std::string& token) { return "'" + printable(token, 40) + "'"; }

}  // namespace detail
}  // namespace io
}  // namespace patchgcl
