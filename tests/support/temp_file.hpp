#pragma once
// Files the reader tests write byte for byte, and remove when they go out of scope.

#include <cstddef>
#include <cstdio>
#include <fstream>
#include <string>

namespace patchgcl_test {

/// Writes `bytes` to a file of its own in the working directory, named `<stem>_<n><suffix>`, and
/// removes it in the destructor.
struct TempFile {
  std::string path;
  TempFile(const std::string& bytes, const std::string& stem, const std::string& suffix) {
    static int counter = 0;
    path = stem + "_" + std::to_string(counter++) + suffix;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() { std::remove(path.c_str()); }
};

/// `n` zero bytes: the data section of a file whose header the test is about.
inline std::string zeros(size_t n) { return std::string(n, '\0'); }

}  // namespace patchgcl_test
