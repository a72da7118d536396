// A scratch folder for a test, removed when the test ends.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace trainer_tests {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("patchgcl_trainer_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace trainer_tests
