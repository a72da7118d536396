// Every public header, compiled on its own with -Wall -Wextra -Wpedantic -Werror in the C++
// standard of the build (tests/CMakeLists.txt): include/ must stay warning-free in C++17 and
// C++20 on every LibTorch of CI. LibTorch's own headers are system headers (imported target).
#include <patchgcl/patchgcl.hpp>
// Beside the umbrella, which does not include it (nlohmann-json: PatchGCL::safetensors).
#include <patchgcl/io/safetensors.hpp>
// Beside the umbrella too: a check of the process's OpenBLAS, for programs' start-up.
#include <patchgcl/blas_kernels.hpp>

int main() { return patchgcl::compat::kTorch2 ? 0 : 0; }
