#pragma once

// The device the device-aware tests run on: PATCHGCL_TEST_DEVICE (cpu, the default, or cuda,
// cuda:N). scripts/gpu-check.sh runs the suite with PATCHGCL_TEST_DEVICE=cuda.

#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace patchgcl_test {

inline std::string device_name() {
  const char* env = std::getenv("PATCHGCL_TEST_DEVICE");
  return env && *env ? env : "cpu";
}

/// PATCHGCL_TEST_DEVICE as a torch::Device (throws on a malformed name).
inline torch::Device device() {
  static const torch::Device d(device_name());
  return d;
}

/// Empty when the device can run tensors here, otherwise why not.
inline std::string device_unavailable_reason() {
  const auto d = device();
  if (d.is_cpu()) return "";
  if (!d.is_cuda()) return "PATCHGCL_TEST_DEVICE=" + device_name() + ": only cpu and cuda are supported";
  if (!torch::cuda::is_available())
    return "PATCHGCL_TEST_DEVICE=" + device_name() +
           " but no CUDA device is available (torch::cuda::device_count() = 0, or LibTorch without CUDA)";
  if (d.has_index() && d.index() >= static_cast<int64_t>(torch::cuda::device_count()))
    return "PATCHGCL_TEST_DEVICE=" + device_name() + " but only " + std::to_string(torch::cuda::device_count()) +
           " CUDA device(s)";
  return "";
}

}  // namespace patchgcl_test
