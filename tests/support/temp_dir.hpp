#pragma once
// A scratch folder for a test, removed when the test ends.

#include <unistd.h>

#include <filesystem>
#include <string>

namespace patchgcl_test {

/// A fresh folder under the system temp dir, named after the test and this process, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    path = std::filesystem::temp_directory_path() / ("patchgcl_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace patchgcl_test
