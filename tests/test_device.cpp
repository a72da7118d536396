// The device the suite runs on (PATCHGCL_TEST_DEVICE, tests/support/device.hpp) and the
// sync-free promise of the losses on CUDA: no host synchronisation in forward + backward.

#include <patchgcl/compat.hpp>
#include <patchgcl/patchgcl.hpp>

#include <catch2/catch.hpp>

#include "support/device.hpp"

#if PATCHGCL_TEST_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <functional>
#include <iostream>
#include <string>
#include <vector>

using namespace patchgcl;

namespace patchgcl_test {

std::string check_test_device() {
  const auto reason = device_unavailable_reason();
  if (reason.empty()) std::cerr << "patchgcl_tests: device " << device() << "\n";
  return reason;
}

}  // namespace patchgcl_test

namespace {

/// Feature maps of three layers on the test device, as the losses get them from an encoder.
struct DeviceFeatures {
  std::vector<torch::Tensor> output_features, input_features, patch_ids;
};

DeviceFeatures device_features(const std::vector<int64_t>& channels, int64_t side, int64_t patches) {
  torch::manual_seed(5);
  const auto options = torch::TensorOptions().device(patchgcl_test::device());
  DeviceFeatures f;
  for (auto c : channels) {
    f.input_features.push_back(torch::relu(torch::randn({2, c, side, side}, options)));
    f.output_features.push_back(torch::relu(torch::randn({2, c, side, side}, options)).requires_grad_(true));
    f.patch_ids.push_back(functional::random_patch_ids(f.input_features.back(), patches));
  }
  return f;
}

#if PATCHGCL_TEST_CUDA
/// c10's CUDA sync-debug mode while alive (restored after, also on a throw).
class SyncDebugMode {
 public:
  explicit SyncDebugMode(c10::cuda::SyncDebugMode mode) : previous_(c10::cuda::warning_state().get_sync_debug_mode()) {
    c10::cuda::warning_state().set_sync_debug_mode(mode);
  }
  ~SyncDebugMode() { c10::cuda::warning_state().set_sync_debug_mode(previous_); }
  SyncDebugMode(const SyncDebugMode&) = delete;
  SyncDebugMode& operator=(const SyncDebugMode&) = delete;

 private:
  c10::cuda::SyncDebugMode previous_;
};
#endif

/// Runs `step` (one forward + backward) and returns how many host synchronisations LibTorch's
/// CUDA sync-debug mode reported in it: every synchronising CUDA call raises a warning in
/// L_WARN mode, counted here; L_ERROR then checks that the same step throws nothing.
int64_t count_host_syncs(const std::function<void()>& step) {
#if PATCHGCL_TEST_CUDA
  int64_t syncs = 0;
  {
    compat::ScopedWarningCallback counter([&](const std::string& msg) {
      if (msg.find("synchroniz") != std::string::npos) {
        ++syncs;
        UNSCOPED_INFO("sync: " << msg);
      }
    });
    SyncDebugMode warn(c10::cuda::SyncDebugMode::L_WARN);
    step();
  }
  if (syncs == 0) {
    SyncDebugMode error(c10::cuda::SyncDebugMode::L_ERROR);
    step();
  }
  return syncs;
#else
  (void)step;
  FAIL("built without LibTorch's CUDA libraries (PATCHGCL_TEST_CUDA is 0)");
  return -1;
#endif
}

}  // namespace

TEST_CASE("Each loss's forward and backward on CUDA make no host synchronisation with the finite check off", "[sync]") {
  const auto device = patchgcl_test::device();
  if (!device.is_cuda()) {
    WARN("skipped: the sync count needs CUDA (PATCHGCL_TEST_DEVICE=cuda); this run is on " << device);
    return;
  }
#if !PATCHGCL_TEST_CUDA
  FAIL("PATCHGCL_TEST_DEVICE=cuda, but this build does not link LibTorch's CUDA libraries");
#endif
  const std::vector<int64_t> channels{16, 32};
  auto in = device_features(channels, 16, 64);

  auto graph_paper = GraphNCELossOptions::paper(channels);
  graph_paper.num_patches(64).nc(32).check_finite(FiniteCheck::kNever);
  auto graph_reference = GraphNCELossOptions::reference(channels);
  graph_reference.num_patches(64).nc(32).check_finite(FiniteCheck::kNever);
  PatchNCELossOptions patch(channels);
  patch.num_patches(64).nc(32).check_finite(FiniteCheck::kNever);
  auto put = PatchNCELossOptions::put(channels);
  put.num_patches(64).nc(32).check_finite(FiniteCheck::kNever);

  std::vector<std::pair<std::string, std::function<torch::Tensor()>>> losses;
  GraphNCELoss graph_loss(graph_paper), graph_reference_loss(graph_reference);
  PatchNCELoss patch_loss(patch), put_loss(put);
  for (auto* m :
       std::vector<torch::nn::Module*>{graph_loss.get(), graph_reference_loss.get(), patch_loss.get(), put_loss.get()})
    m->to(device);
  losses.emplace_back("GraphNCELossOptions::paper",
                      [&] { return graph_loss->forward(in.output_features, in.input_features, in.patch_ids); });
  losses.emplace_back("GraphNCELossOptions::reference", [&] {
    return graph_reference_loss->forward(in.output_features, in.input_features, in.patch_ids);
  });
  losses.emplace_back("PatchNCELoss",
                      [&] { return patch_loss->forward(in.output_features, in.input_features, in.patch_ids); });
  losses.emplace_back("PatchNCELossOptions::put",
                      [&] { return put_loss->forward(in.output_features, in.input_features, in.patch_ids); });

  for (const auto& [name, forward] : losses) {
    INFO(name);
    auto step = [&] {
      auto loss = forward();
      loss.backward();
      for (auto& x : in.output_features) x.mutable_grad().reset();
    };
    step();  // warm-up: cuBLAS handles, the caching allocator's first blocks
    const auto syncs = count_host_syncs(step);
    std::cerr << "host syncs in forward+backward of " << name << ": " << syncs << "\n";
    CHECK(syncs == 0);
  }
}
