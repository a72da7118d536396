#pragma once
// A loss's C++ module as a TorchScript custom class, built once per Python module (building
// GraphNCELoss draws and allocates all its parameters: about as long as half a training step).
// The Python module sets the options through the typed setters, calls `build`, and registers the
// tensors of `parameters` as its nn.Parameters. `run` computes the loss with the parameter
// tensors it is given (the Python module's, or the graph inputs that torch.compile passes):
// every Linear of the module is pointed at them for the call.
#include "autograd_kernel.hpp"
#include "loss_options.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/custom_class.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace patchgcl_python {

using Tensors = std::vector<at::Tensor>;

/// Points every Linear of `m` at `parameters` (named_parameters() order): `weight` and `bias`,
/// the members its forward reads, become the given tensors. (LibTorch cannot re-register a
/// parameter name, so the module's parameter dict keeps its own initial tensors, never read.)
inline void bind_parameters(torch::nn::Module& m, const Tensors& parameters, const char* fn) {
  std::map<std::string, at::Tensor> by_name;
  const auto named = m.named_parameters();
  TORCH_CHECK(parameters.size() == named.size(), fn, ": expected ", named.size(), " parameter tensors, got ",
              parameters.size());
  for (size_t i = 0; i < named.size(); ++i) by_name[named[i].key()] = parameters[i];
  for (const auto& item : m.named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    if (!linear) continue;
    auto bind = [&](at::Tensor& member, const char* local) {
      const auto name = item.key() + "." + local;
      const auto& t = by_name.at(name);
      TORCH_CHECK(t.sizes() == member.sizes(), fn, ": parameter `", name, "` must have shape ", member.sizes(),
                  ", got ", t.sizes());
      member = t;
    };
    bind(linear->weight, "weight");
    if (linear->options.bias()) bind(linear->bias, "bias");
  }
}

/// What rebuilds a loss module (its pickled state, for copy.deepcopy and torch.compile's graph
/// cache): the preset, in_channels, and each option set, by name, in order.
using Recipe = std::tuple<std::string, std::vector<int64_t>, std::vector<std::string>, c10::impl::GenericList>;

/// The loss, and when `with_grads`, d loss / d parameters and d loss / d output_features (the
/// input side is detached in both losses): one C++ forward + backward, for the op's autograd.
using LossAndGrads = std::tuple<at::Tensor, Tensors, Tensors>;

template <typename Impl, typename Options>
class LossHolder : public torch::CustomClassHolder {
 public:
  LossHolder(Options options, const OptionTable<Options>& table, const char* fn, std::string preset,
             std::vector<int64_t> in_channels)
      : options_(std::move(options)),
        table_(table),
        fn_(fn),
        preset_(std::move(preset)),
        in_channels_(std::move(in_channels)),
        values_(c10::AnyType::get()) {}

  void set(const std::string& name, const c10::IValue& value) {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(!module_, fn_, ": options are set before build()");
    table_.set(options_, name, value);
    names_.push_back(name);
    values_.push_back(value);
  }

  Recipe recipe() const { return Recipe(preset_, in_channels_, names_, values_.copy()); }

  /// `holder` with the options of `recipe`, built without drawing from torch's CPU generator (its
  /// state is restored: a deepcopy leaves the random stream where it was; the parameters of a
  /// loss module come with each call anyway).
  template <typename H>
  static c10::intrusive_ptr<H> rebuild(const Recipe& recipe) {
    auto holder = c10::make_intrusive<H>(std::get<0>(recipe), std::get<1>(recipe));
    const auto& values = std::get<3>(recipe);
    for (size_t i = 0; i < std::get<2>(recipe).size(); ++i) holder->set(std::get<2>(recipe)[i], values.get(i));
    auto generator = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      state = generator.get_state();
    }
    holder->build();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
    return holder;
  }

  /// Builds the C++ module (its own reset: the C++ initialisation under torch's generator) and
  /// returns its named parameters.
  std::tuple<std::vector<std::string>, Tensors> build() {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(!module_, fn_, ": build() was called already");
    module_ = std::make_shared<Impl>(options_);
    std::vector<std::string> names;
    Tensors tensors;
    for (const auto& p : module_->named_parameters()) {
      names.push_back(p.key());
      tensors.push_back(p.value());
    }
    return std::make_tuple(std::move(names), std::move(tensors));
  }

  std::vector<std::string> option_names() const { return table_.names(); }

  LossAndGrads run(const Tensors& parameters, const Tensors& output_features, const Tensors& input_features,
                   const Tensors& patch_ids, c10::optional<int64_t> num_patches, bool with_grads) {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(module_, fn_, ": build() was not called");
    const auto configured = module_->options.num_patches();
    if (num_patches) module_->options.num_patches(*num_patches);  // this call's, as the released code's
    struct Restore {
      Impl& m;
      int64_t n;
      ~Restore() { m.options.num_patches(n); }
    } restore{*module_, configured};
    if (!with_grads) {
      at::NoGradGuard no_grad;
      bind_parameters(*module_, parameters, fn_);
      return LossAndGrads(module_->forward(output_features, input_features, patch_ids), {}, {});
    }
    EnableAutogradInKernel autograd;
    Tensors leaves, outputs;
    for (const auto& p : parameters) leaves.push_back(p.detach().requires_grad_(p.is_floating_point()));
    for (const auto& f : output_features) outputs.push_back(f.detach().requires_grad_(f.is_floating_point()));
    bind_parameters(*module_, leaves, fn_);
    auto loss = module_->forward(outputs, input_features, patch_ids);
    Tensors wrt;
    for (const auto& t : leaves) wrt.push_back(t);
    for (const auto& t : outputs) wrt.push_back(t);
    auto grads = gradients({loss}, wrt, {});
    Tensors parameter_grads(grads.begin(), grads.begin() + leaves.size());
    Tensors output_grads(grads.begin() + leaves.size(), grads.end());
    return LossAndGrads(loss.detach(), std::move(parameter_grads), std::move(output_grads));
  }

  /// What torch.compile's fake object of the holder keeps: the loss's name (a fake kernel needs
  /// nothing else).
  std::tuple<std::tuple<std::string, std::string>> obj_flatten() const {
    return std::make_tuple(std::make_tuple(std::string("loss"), std::string(fn_)));
  }

 private:
  std::mutex mutex_;
  Options options_;
  const OptionTable<Options>& table_;
  const char* fn_;
  std::string preset_;
  std::vector<int64_t> in_channels_;
  std::vector<std::string> names_;
  c10::impl::GenericList values_;
  std::shared_ptr<Impl> module_;
};

}  // namespace patchgcl_python
