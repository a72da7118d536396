// Adam's state as checkpoint tensors and back, so that a resumed run takes exactly the steps an
// uninterrupted one would: per parameter (by its index i over the optimiser's parameter groups)
//   <prefix>.<i>.step             int64 scalar, the steps Adam has taken for it (>= 1)
//   <prefix>.<i>.exp_avg          the first moment, the parameter's shape and dtype
//   <prefix>.<i>.exp_avg_sq       the second moment (>= 0: its square root divides the update)
//   <prefix>.<i>.max_exp_avg_sq   with amsgrad only
// A parameter Adam has not stepped yet has no state and no tensors.
//
// LibTorch keys Optimizer::state() by the parameter's TensorImpl: as the text of the pointer
// (c10::guts::to_string, a std::string key) in 1.13, as the pointer itself (a void* key) in 2.x;
// adam_state_key picks the key type the headers declare.
#pragma once

#include "trainer/train/checkpoint_file.hpp"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace trainer::checkpoint {

/// The key of parameter `p` in `opt.state()`.
template <typename Optimizer>
auto adam_state_key(Optimizer& opt, const torch::Tensor& p) {
  using Key = typename std::decay_t<decltype(opt.state())>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;  // what c10::guts::to_string(TensorImpl*) writes
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

/// The parameters of `opt`'s groups, in order (the index i of the tensor names).
inline std::vector<torch::Tensor> adam_parameters(const torch::optim::Adam& opt) {
  std::vector<torch::Tensor> out;
  for (const auto& group : opt.param_groups())
    for (const auto& p : group.params()) out.push_back(p);
  return out;
}

/// Adds `opt`'s state to `tensors` under `prefix` (see the top of this file).
inline void add_adam_state(std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                           torch::optim::Adam& opt) {
  size_t index = 0;
  for (const auto& group : opt.param_groups()) {
    const bool amsgrad = static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad();
    for (const auto& p : group.params()) {
      const std::string at = fmt::format("{}.{}.", prefix, index++);
      auto it = opt.state().find(adam_state_key(opt, p));
      if (it == opt.state().end()) continue;
      const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
      tensors[at + "step"] = torch::tensor(static_cast<int64_t>(s.step()), torch::kInt64);
      tensors[at + "exp_avg"] = s.exp_avg();
      tensors[at + "exp_avg_sq"] = s.exp_avg_sq();
      if (amsgrad) tensors[at + "max_exp_avg_sq"] = s.max_exp_avg_sq();
    }
  }
}

/// Replaces `opt`'s state by the one in `file` under `prefix`, after checking all of it: tensors of
/// the parameter's shape and dtype, finite, second moments >= 0, step counts in [1, `max_step`]
/// (the checkpoint's step), max_exp_avg_sq exactly when the optimiser uses amsgrad.
inline void restore_adam_state(CheckpointFile& file, const std::string& prefix, torch::optim::Adam& opt,
                               int64_t max_step) {
  struct Entry {
    torch::Tensor param;
    std::unique_ptr<torch::optim::AdamParamState> state;
  };
  std::vector<Entry> entries;
  const auto params = adam_parameters(opt);
  size_t index = 0;
  for (const auto& group : opt.param_groups()) {
    const bool amsgrad = static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad();
    for (size_t k = 0; k < group.params().size(); ++k, ++index) {
      const torch::Tensor& p = params[index];
      const std::string at = fmt::format("{}.{}.", prefix, index);
      const bool stepped = file.has(at + "step");
      for (const char* part : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) {
        const bool wanted = stepped && (part != std::string("max_exp_avg_sq") || amsgrad);
        if (file.has(at + part) != wanted)
          throw std::runtime_error(fmt::format("{}: tensor '{}{}' is {}", file.name(), at, part,
                                               wanted ? "missing (the state of a parameter Adam has stepped)"
                                                      : "not expected here (" +
                                                            std::string(stepped ? "this optimiser does not use amsgrad"
                                                                                : "no step count '" + at + "step'") +
                                                            ")"));
      }
      if (!stepped) continue;
      const int64_t step = file.tensor(at + "step", torch::kInt64, {}).item<int64_t>();
      if (step < 1 || step > max_step)
        throw std::runtime_error(fmt::format("{}: tensor '{}step' must be in [1, {}] (the checkpoint's step) (got {})",
                                             file.name(), at, max_step, step));
      const auto moment = [&](const char* part) {
        return file.tensor(at + part, p.scalar_type(), p.sizes()).to(p.device());
      };
      auto state = std::make_unique<torch::optim::AdamParamState>();
      state->step(step);
      state->exp_avg(moment("exp_avg"));
      state->exp_avg_sq(moment("exp_avg_sq"));
      if (amsgrad) state->max_exp_avg_sq(moment("max_exp_avg_sq"));
      for (const auto* sq : {&state->exp_avg_sq(), &state->max_exp_avg_sq()})
        if (sq->defined() && (*sq < 0).any().item<bool>())
          throw std::runtime_error(fmt::format("{}: tensor '{}{}' holds negative values (a second moment is >= 0)",
                                               file.name(), at,
                                               sq == &state->exp_avg_sq() ? "exp_avg_sq" : "max_exp_avg_sq"));
      entries.push_back({p, std::move(state)});
    }
  }
  opt.state().clear();
  for (auto& e : entries) opt.state()[adam_state_key(opt, e.param)] = std::move(e.state);
}

}  // namespace trainer::checkpoint
