// Where this checkout and its build are, for the trainer's tests. Only checkout_paths.cpp is compiled
// with the paths, so that the other test files and their precompiled header do not depend on where
// the checkout is, and ccache reuses their objects in another clone (CI builds a fresh one).
#pragma once

namespace trainer_tests::checkout {
const char* source_dir();      ///< the repository's root
const char* fixture_dir();     ///< tests/fixtures
const char* trainer_binary();  ///< the patchgcl-trainer executable of this build
}  // namespace trainer_tests::checkout

#define PATCHGCL_SOURCE_DIR (::trainer_tests::checkout::source_dir())
#define PATCHGCL_FIXTURE_DIR (::trainer_tests::checkout::fixture_dir())
#define PATCHGCL_TRAINER_BINARY (::trainer_tests::checkout::trainer_binary())
