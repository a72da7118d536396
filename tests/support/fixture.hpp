#pragma once

// Parity fixtures (tests/fixtures/*.pgt, written by tests/reference/generate_fixtures.py) and the
// comparisons the parity tests make with them.

#include <patchgcl/io/tensor_file.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace patchgcl_test {

/// tests/fixtures of this checkout. Only fixture_dir.cpp is compiled with the path, so that the
/// other test files and their precompiled header do not depend on where the checkout is, and
/// ccache reuses their objects in another clone (CI builds a fresh one).
const char* fixture_dir();

inline patchgcl::io::TensorFile load_fixture(const std::string& name) {
  return patchgcl::io::read_tensor_file(std::string(fixture_dir()) + "/" + name + ".pgt");
}

/// One precision the parity tests run in, with its tolerance on the float64 expectation.
struct Precision {
  c10::ScalarType dtype;
  double rel;
  const char* name;
};
inline std::vector<Precision> precisions() {
  return {{torch::kFloat64, 1e-9, "float64"}, {torch::kFloat32, 1e-5, "float32"}};
}

/// `max|actual - expected| / max|expected|`: relative error scaled by the tensor's largest entry
/// (for a scalar, the plain relative error). Element-wise relative error is ill-posed for gradient
/// entries that are zero or cancel to ~1e-17 in the reference.
inline double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  auto a = actual.detach().to(torch::kFloat64).cpu();
  auto e = expected.detach().to(torch::kFloat64).cpu();
  const double scale = e.abs().max().item<double>();
  const double diff = (a - e).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

inline void check_close(const torch::Tensor& actual, const torch::Tensor& expected, double rel,
                        const std::string& what) {
  INFO(what);
  REQUIRE(actual.defined());
  REQUIRE(actual.sizes() == expected.sizes());
  const double err = relative_error(actual, expected);
  INFO("relative error " << err << " (tolerance " << rel << ")");
  CHECK(err <= rel);
}

/// A gradient that the reference does not produce (a detached input): undefined or all zero.
inline void check_no_gradient(const torch::Tensor& grad, const std::string& what) {
  INFO(what);
  if (grad.defined()) CHECK(grad.abs().max().item<double>() == 0.0);
}

}  // namespace patchgcl_test
