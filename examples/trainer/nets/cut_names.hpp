// The generator's tensors under the names of CUT's PyTorch `ResnetGenerator` (Park et al. 2020,
// models/networks.py), so that its `load_state_dict(..., strict=True)` takes them as they are.
//
// Both keep the layers in one Sequential `model` in the same order, so parameters have the same
// names; only the anti-aliasing filters differ. With B = n_blocks, for CUT's options norm instance
// (affine=False, track_running_stats=False: no tensors), antialias and antialias_up on (CUT's
// default), use_dropout off, padding_type reflect:
//
//   index            layer                    this trainer                CUT's state_dict
//   1                c7s1 conv                model.1.{weight,bias}       model.1.{weight,bias}
//   4, 8             down conv (3x3)          model.4/8.{weight,bias}     same
//   7, 11            Downsample(2ngf, 4ngf)   model.7/11.filter [1,1,3,3] model.7/11.filt [C,1,3,3]
//   12 .. 11+B       ResnetBlock(4ngf)        model.K.conv_block.{1,5}.{weight,bias}   same
//   12+B, 16+B       Upsample(4ngf, 2ngf)     (none: a fixed filter)      model.K.filt [C,1,4,4]
//   13+B, 17+B       up conv (3x3)            model.K.{weight,bias}       same
//   21+B             c7s1 output conv         model.K.{weight,bias}       same
//
// Ours -> CUT's: every weight and bias keeps its name; Downsample's one-channel filter is repeated
// over its C channels as `filt` (CUT's depthwise buffer); each Upsample gets CUT's fixed `filt`,
// ([1,3,3,1] (x) [1,3,3,1]) / 64 * 4 per channel. CUT's -> ours: weights and biases keep their names,
// `model.K.filt` of a Downsample is `model.K.filter` (its first channel, all channels being equal),
// and `filt` of an Upsample has no counterpart (this trainer computes it as bilinear x2, antialias.hpp).
// docs/trainer.md, "The generator in PyTorch", shows both directions.
#pragma once

#include "trainer/nets/generator.hpp"

#include <patchgcl/detail/integer.hpp>

#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace trainer::cut_names {

/// CUT's `get_filter(filt_size)` (the outer product of a binomial row, normalised to sum 1) times
/// `scale`, repeated over `channels` as `[channels, 1, k, k]`: the `filt` buffer of its layers.
inline torch::Tensor binomial_filter(int64_t channels, std::vector<double> row, double scale) {
  auto r = torch::tensor(row, torch::kFloat64);
  auto f = (r.unsqueeze(1) * r.unsqueeze(0));
  f = (f / f.sum() * scale).to(torch::kFloat32);
  const auto k = static_cast<int64_t>(row.size());
  return f.view({1, 1, k, k}).repeat({channels, 1, 1, 1}).contiguous();
}
/// CUT's `Downsample(C).filt`: [1,2,1] (x) [1,2,1] / 16.
inline torch::Tensor downsample_filt(int64_t channels) { return binomial_filter(channels, {1, 2, 1}, 1.0); }
/// CUT's `Upsample(C).filt`: [1,3,3,1] (x) [1,3,3,1] / 64 * stride^2 (stride 2).
inline torch::Tensor upsample_filt(int64_t channels) { return binomial_filter(channels, {1, 3, 3, 1}, 4.0); }

/// `G`'s parameters and buffers under CUT's state_dict names (the table above), on the CPU,
/// detached. Throws if `G` holds a tensor the table does not place (a layer added to the generator
/// without a CUT name), so that no tensor is silently left out.
inline std::map<std::string, torch::Tensor> to_cut_state_dict(const ResnetGeneratorImpl& G) {
  std::map<std::string, torch::Tensor> out;
  std::set<std::string> placed;  // our names that went into `out`
  const auto put = [&](const std::string& ours, const std::string& cut, const torch::Tensor& t) {
    out.emplace(cut, t.detach().to(torch::kCPU).contiguous());
    placed.insert(ours);
  };
  const auto put_conv = [&](const std::string& prefix, const torch::nn::Conv2dImpl& conv) {
    put(prefix + "weight", prefix + "weight", conv.weight);
    if (conv.bias.defined()) put(prefix + "bias", prefix + "bias", conv.bias);
  };
  const auto& layers = *G.model;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string prefix = "model." + std::to_string(i) + ".";
    const auto layer = layers.ptr(i);
    if (const auto* conv = layer->as<torch::nn::Conv2d>()) {
      put_conv(prefix, *conv);
    } else if (const auto* block = layer->as<ResnetBlock>()) {
      for (size_t j = 0; j < block->block->size(); ++j)
        if (const auto* c = block->block->ptr(j)->as<torch::nn::Conv2d>())
          put_conv(prefix + "conv_block." + std::to_string(j) + ".", *c);
    } else if (const auto* down = layer->as<Downsample>()) {
      put(prefix + "filter", prefix + "filt", down->filter().repeat({down->channels(), 1, 1, 1}));
    } else if (const auto* up = layer->as<Upsample>()) {
      out.emplace(prefix + "filt", upsample_filt(up->channels()));
    }
  }
  for (const auto& group : {G.named_parameters(), G.named_buffers()})
    for (const auto& item : group)
      if (item.value().defined() && !placed.count(item.key()))
        throw std::logic_error("to_cut_state_dict: the generator's tensor '" + item.key() + "' has no CUT name");
  return out;
}

/// The name in this trainer's generator of CUT's state_dict entry `cut_name`, for a generator of
/// `n_blocks` residual blocks; "" for the Upsample filters, which this trainer does not store.
/// Throws for a name CUT's ResnetGenerator (with the options above) does not have.
inline std::string from_cut_name(const std::string& cut_name, int64_t n_blocks) {
  const auto bad = [&] {
    return std::invalid_argument("from_cut_name: '" + cut_name + "' is not a tensor of CUT's ResnetGenerator with " +
                                 std::to_string(n_blocks) + " blocks (norm instance, antialias, no dropout)");
  };
  if (cut_name.rfind("model.", 0) != 0) throw bad();
  const auto dot = cut_name.find('.', 6);
  if (dot == std::string::npos || dot == 6 || dot > 15 || cut_name.find_first_not_of("0123456789", 6) != dot)
    throw bad();
  const int64_t index = patchgcl::detail::parse_integer<int64_t>("layer index", cut_name.substr(6, dot - 6));
  const std::string rest = cut_name.substr(dot + 1);
  const int64_t B = n_blocks;
  const bool conv = index == 1 || index == 4 || index == 8 || index == 13 + B || index == 17 + B || index == 21 + B;
  const bool block = index >= 12 && index < 12 + B;
  if (conv && (rest == "weight" || rest == "bias")) return cut_name;
  if (block && (rest == "conv_block.1.weight" || rest == "conv_block.1.bias" || rest == "conv_block.5.weight" ||
                rest == "conv_block.5.bias"))
    return cut_name;
  if ((index == 7 || index == 11) && rest == "filt") return "model." + std::to_string(index) + ".filter";
  if ((index == 12 + B || index == 16 + B) && rest == "filt") return "";
  throw bad();
}

}  // namespace trainer::cut_names
