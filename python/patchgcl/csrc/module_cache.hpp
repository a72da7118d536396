#pragma once
// One C++ loss module per option string, whose Linear layers are pointed at the caller's
// parameter tensors before each forward. The tensors are the Python module's nn.Parameters
// themselves (no copy), so autograd reaches them as leaves, and the C++ forward runs unchanged.
#include <patchgcl/patchgcl.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl_python {

/// The module's parameter names, in `named_parameters()` order (the order the Python side
/// passes the tensors in), and its tensors.
inline std::tuple<std::vector<std::string>, std::vector<at::Tensor>> named_parameters_of(torch::nn::Module& m) {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  for (const auto& p : m.named_parameters()) {
    names.push_back(p.key());
    tensors.push_back(p.value());
  }
  return std::make_tuple(std::move(names), std::move(tensors));
}

/// Points every Linear of `m` at `parameters` (named_parameters() order): `weight` and `bias`,
/// the members its forward reads, become the given tensors. (LibTorch cannot re-register a
/// parameter name, so the module's parameter dict keeps its own initial tensors, never read.)
inline void bind_parameters(torch::nn::Module& m, const std::vector<at::Tensor>& parameters, const char* fn) {
  std::map<std::string, at::Tensor> by_name;
  const auto names = std::get<0>(named_parameters_of(m));
  TORCH_CHECK(parameters.size() == names.size(), fn, ": expected ", names.size(), " parameter tensors, got ",
              parameters.size());
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = parameters[i];
  for (const auto& item : m.named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    if (!linear) continue;
    auto bind = [&](at::Tensor& member, const char* local) {
      const auto name = item.key() + "." + local;
      const auto& t = by_name.at(name);
      TORCH_CHECK(t.sizes() == member.sizes(), fn, ": parameter `", name, "` must have shape ", member.sizes(),
                  ", got ", t.sizes());
      member = t;  // what LinearImpl::forward reads (the parameter dict keeps the module's own, unused)
    };
    bind(linear->weight, "weight");
    if (linear->options.bias()) bind(linear->bias, "bias");
  }
}

/// A process-wide cache of `Impl` modules keyed by their option string. `run` holds the lock
/// for the forward only: the autograd graph it records keeps the tensors, not the module.
template <typename Impl, typename Options>
class ModuleCache {
 public:
  template <typename Forward>
  at::Tensor run(const std::string& spec, const std::vector<at::Tensor>& parameters, const char* fn,
                 Options (*read)(const std::string&), Forward forward) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& module = modules_[spec];
    if (!module) {
      torch::NoGradGuard no_grad;  // its own initial parameters are replaced at once
      module = std::make_shared<Impl>(read(spec));
    }
    bind_parameters(*module, parameters, fn);
    return forward(*module);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Impl>> modules_;
};

}  // namespace patchgcl_python
