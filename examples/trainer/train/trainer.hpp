// The training step: one CUT-style iteration and the state it needs (networks, optimisers, step
// counter). Checkpoints of this state are checkpoint.hpp's job, the features and the loss are
// criterion.hpp's, the loop around the step is commands/training_run.hpp's.
//
//   L_D = 1/2 [ (D(y) - 1)^2 + D(G(x))^2 ]                                   (LSGAN)
//   L_G = lambda_GAN (D(G(x)) - 1)^2 + lambda * ( L_c(X, G(X)) + L_c(Y, G(Y)) ) / 2   (paper Eq. 10-11)
//
// with L_c the contrastive loss of the library (GraphNCELoss, PatchNCELoss or PatchNCELoss::put),
// computed on features of the translation (output) and of the image it translates (input). G(Y)
// comes from running the generator on the concatenated batch [X; Y], as the reference code does.
#pragma once

#include "trainer/dist/collectives.hpp"
#include "trainer/nets/discriminator.hpp"
#include "trainer/nets/generator.hpp"
#include "trainer/train/config.hpp"
#include "trainer/train/criterion.hpp"

#include <memory>

namespace trainer {

/// Losses of one iteration, as plain numbers for logging.
struct StepLosses {
  double D = 0, G_GAN = 0, NCE = 0, NCE_Y = 0, G = 0;
};

/// Loss sums of the steps since the last log line. Saved with the checkpoint, so that a run resumed
/// from a step between two log lines writes the same averages as an uninterrupted one.
struct LogWindow {
  StepLosses sum;
  int64_t steps = 0;
  void add(const StepLosses& l) {
    sum.D += l.D, sum.G_GAN += l.G_GAN, sum.NCE += l.NCE, sum.NCE_Y += l.NCE_Y, sum.G += l.G;
    ++steps;
  }
};

class Trainer {
 public:
  Trainer(TrainConfig config, torch::Device device, const std::string& vgg_weights = "")
      : config_(std::move(config)), device_(device) {
    config_.validate();
    torch::manual_seed(config_.seed);
    G = ResnetGenerator(GeneratorOptions()
                            .input_nc(config_.input_nc)
                            .output_nc(config_.output_nc)
                            .ngf(config_.ngf)
                            .n_blocks(config_.n_blocks));
    D = PatchDiscriminator(DiscriminatorOptions().input_nc(config_.output_nc).ndf(config_.ndf));
    G->to(device_);
    D->to(device_);
    features_ = make_features(config_.features, G, vgg_weights, device_);
    F = make_criterion(config_.loss, features_->channels(), patches_for(config_.synthetic_size_or_crop()),
                       config_.negatives);
    F.module->to(device_);
    auto adam = [&] {
      return torch::optim::AdamOptions(config_.lr).betas(std::make_tuple(config_.beta1, config_.beta2));
    };
    opt_G = std::make_unique<torch::optim::Adam>(G->parameters(), adam());
    opt_D = std::make_unique<torch::optim::Adam>(D->parameters(), adam());
    opt_F = std::make_unique<torch::optim::Adam>(F.module->parameters(), adam());
  }

  const TrainConfig& config() const { return config_; }
  /// Locations sampled per layer: --num-patches, or every location of the smallest feature map
  /// when that has fewer (CUT's min(num_patches, H*W); small demo images hit this).
  int64_t num_patches() const { return num_patches_; }
  torch::Device device() const { return device_; }
  /// Steps done; the next train_step computes step `step()` (0-based).
  int64_t step() const { return step_; }
  /// Sets the step counter of a restored state (checkpoint::restore); the rest of the state is the
  /// networks' and optimisers', which the checkpoint restores in place.
  void restore_step(int64_t step) { step_ = step; }

  /// Data-parallel training over `collectives` (null: one process): rank 0's parameters are
  /// broadcast now, and every train_step averages the gradients of D, and of G and the heads,
  /// and the logged losses. With `overlap` (the default) each bucket's all-reduce starts during
  /// backward, as soon as its gradients are computed; without, all of them after backward.
  void set_distributed(Collectives* collectives, bool overlap = true) {
    reduce_D_.reset();
    reduce_GF_.reset();
    dist_ = collectives;
    if (config_.negatives == NegativesKind::kGlobal)
      F.set_negatives_from_all_processes(dist_ ? dist_->key_all_gather() : nullptr);
    if (!dist_) return;
    std::vector<torch::Tensor> state;
    for (auto* m :
         {static_cast<torch::nn::Module*>(G.get()), static_cast<torch::nn::Module*>(D.get()), F.module.get()}) {
      for (auto& p : m->parameters()) state.push_back(p);
      for (auto& b : m->buffers()) state.push_back(b);
    }
    dist_->broadcast(state);
    if (overlap) {
      reduce_D_ = dist_->overlapped_reducer(parameters_of({D.get()}));
      reduce_GF_ = dist_->overlapped_reducer(parameters_of({G.get(), F.module.get()}));
    }
  }
  /// Processes training together (1 without set_distributed) and this one's rank.
  int world() const { return dist_ ? dist_->world() : 1; }
  int rank() const { return dist_ ? dist_->rank() : 0; }
  /// Processes of the run that wrote the restored checkpoint (1 for a fresh trainer).
  int saved_world() const { return saved_world_; }
  void restore_world(int world) { saved_world_ = world; }
  /// Bytes of gradients all-reduced by the last train_step (0 in one process).
  int64_t bytes_all_reduced() const { return bytes_all_reduced_; }

  /// One iteration (CUT's optimize_parameters) on `batch`: the generator's forward pass, then
  /// d_step and g_step; advances the step counter. All randomness inside (patch sampling of the
  /// loss) is seeded from (seed, step), so a resumed run draws exactly what the uninterrupted run
  /// would have drawn.
  StepLosses train_step(const Batch& batch) {
    torch::manual_seed(mix_seed(config_.seed, static_cast<uint64_t>(step_), 3));
    set_learning_rate(config_.lr * config_.lr_factor(step_));
    bytes_all_reduced_ = 0;
    G->train();
    D->train();
    const auto images = forward(batch);
    const double loss_D = d_step(images);
    StepLosses out = g_step(images);
    out.D = loss_D;
    if (dist_) {  // the global batch's losses: the mean of the ranks' (each a mean over its images)
      const auto m = dist_->average({out.D, out.G_GAN, out.NCE, out.NCE_Y, out.G});
      out = {m[0], m[1], m[2], m[3], m[4]};
    }
    flipped_ = false;  // contrastive() outside a step compares unflipped features
    ++step_;
    return out;
  }

  /// lambda * L_c(src, G(src)): output features from the translation, input features from the source.
  /// With flip equivariance on a flipped step, the translation's features are flipped back first.
  torch::Tensor contrastive(const torch::Tensor& source, const torch::Tensor& translated) {
    auto output = (*features_)(translated);
    if (flipped_)
      for (auto& f : output) f = f.flip({3});
    return F.forward(output, (*features_)(source)) * config_.lambda();
  }

  /// Whether the flip-equivariance draw of `step` flips the generator's input (half of the steps).
  bool flips_at(int64_t step) const { return (mix_seed(config_.seed, static_cast<uint64_t>(step), 4) >> 11) & 1; }

  /// The contrastive feature pyramid of `images` (the encoder's or VGG16's), as the loss sees it.
  std::vector<torch::Tensor> contrastive_features(const torch::Tensor& images) {
    return (*features_)(images.to(device_));
  }

  /// Translation in eval mode without gradients: `images` `[B,C,H,W]` with C = 1 or 3 is converted to
  /// the generator's input channels (as the training data is); the result has config().output_nc.
  /// Other channel counts are refused.
  torch::Tensor translate(const torch::Tensor& images) {
    if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3))
      throw std::invalid_argument(fmt::format(
          "translate: expected images [B, 1 or 3, H, W] for a generator of {} input channel(s), got {} dims{}",
          config_.input_nc, images.dim(), images.dim() >= 2 ? fmt::format(" with {} channels", images.size(1)) : ""));
    torch::NoGradGuard no_grad;
    G->eval();
    return G->forward(to_channels(images.to(device_), config_.input_nc));
  }

  // The state a checkpoint saves and restores (checkpoint.hpp), with step() and log_window.
  ResnetGenerator G{nullptr};
  PatchDiscriminator D{nullptr};
  ContrastiveCriterion F;
  std::unique_ptr<torch::optim::Adam> opt_G, opt_D, opt_F;
  /// Losses since the last log line (train() fills it; saved and restored with the checkpoint).
  LogWindow log_window;

 private:
  /// A step's images (CUT's real_A, real_B, fake_B, idt_B): domain A in the generator's channels,
  /// domain B in the translation's (to_channels: 1 or 3), and their translations.
  struct Translated {
    torch::Tensor real_A, real_B, fake_B;
    torch::Tensor idt_B;  ///< G(Y), with nce_idt only
  };

  /// CUT's forward(): the generator on [X] or, with nce_idt, on the concatenated batch [X; Y].
  /// FastCUT's flip equivariance: the generator sees the batch flipped on half of the steps, drawn
  /// from (seed, step) so that a resumed run flips the same steps; contrastive() flips the features back.
  Translated forward(const Batch& batch) {
    Translated t;
    t.real_A = to_channels(batch.real_A.to(device_), config_.input_nc);
    t.real_B = to_channels(batch.real_B.to(device_), config_.output_nc);
    const int64_t n = t.real_A.size(0);
    auto real = config_.nce_idt ? torch::cat({t.real_A, to_channels(t.real_B, config_.input_nc)}) : t.real_A;
    flipped_ = config_.flip_equivariance && flips_at(step_);
    if (flipped_) real = real.flip({3});
    auto fake = G->forward(real);
    t.fake_B = fake.narrow(0, 0, n);
    if (config_.nce_idt) t.idt_B = fake.narrow(0, n, n);
    return t;
  }

  /// The discriminator's update (CUT's compute_D_loss, backward and optimiser step): L_D (LSGAN)
  /// on the detached translation and the real domain-B images, its gradients averaged over the
  /// ranks. Returns L_D.
  double d_step(const Translated& t) {
    set_requires_grad(*D, true);
    opt_D->zero_grad();
    auto loss_D = 0.5 * (D->forward(t.fake_B.detach()).pow(2).mean() + (D->forward(t.real_B) - 1).pow(2).mean());
    if (reduce_D_) reduce_D_->begin();
    loss_D.backward();
    average_gradients(reduce_D_.get(), {D.get()});
    opt_D->step();
    return loss_D.item<double>();
  }

  /// The update of the generator and the contrastive heads (CUT's compute_G_loss, backward and
  /// optimiser steps), D frozen: L_G of paper Eq. 10-11, its gradients averaged over the ranks.
  /// Returns its terms (D left 0).
  StepLosses g_step(const Translated& t) {
    set_requires_grad(*D, false);
    opt_G->zero_grad();
    opt_F->zero_grad();
    StepLosses out;
    auto loss_G_GAN = (D->forward(t.fake_B) - 1).pow(2).mean() * config_.lambda_gan;
    auto loss_NCE = contrastive(t.real_A, t.fake_B);
    torch::Tensor loss_G;
    if (config_.nce_idt) {
      auto loss_NCE_Y = contrastive(t.real_B, t.idt_B);
      loss_G = loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y);
      out.NCE_Y = loss_NCE_Y.item<double>();
    } else {
      loss_G = loss_G_GAN + loss_NCE;
    }
    if (reduce_GF_) reduce_GF_->begin();
    loss_G.backward();
    average_gradients(reduce_GF_.get(), {G.get(), F.module.get()});
    opt_G->step();
    opt_F->step();
    out.G_GAN = loss_G_GAN.item<double>();
    out.NCE = loss_NCE.item<double>();
    out.G = loss_G.item<double>();
    return out;
  }

  int64_t patches_for(int64_t image_size) {
    torch::NoGradGuard no_grad;
    num_patches_ = config_.num_patches;
    for (const auto& f :
         (*features_)(torch::zeros({1, 3, image_size, image_size}, torch::TensorOptions().device(device_))))
      num_patches_ = std::min(num_patches_, f.size(2) * f.size(3));
    return num_patches_;
  }
  static std::vector<torch::Tensor> parameters_of(std::initializer_list<torch::nn::Module*> modules) {
    std::vector<torch::Tensor> params;
    for (auto* m : modules)
      for (auto& p : m->parameters()) params.push_back(p);
    return params;
  }
  /// Between backward and the optimiser step: waits for the overlapped all-reduces of `reducer`,
  /// or (without) all-reduces the gradients of `modules` now.
  void average_gradients(GradientReducer* reducer, std::initializer_list<torch::nn::Module*> modules) {
    if (!dist_) return;
    bytes_all_reduced_ += reducer ? reducer->finish() : dist_->average_gradients(parameters_of(modules));
  }
  static void set_requires_grad(torch::nn::Module& module, bool on) {
    for (auto& p : module.parameters()) p.set_requires_grad(on);
  }
  void set_learning_rate(double lr) {
    for (auto* opt : {opt_G.get(), opt_D.get(), opt_F.get()})
      for (auto& group : opt->param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }

  TrainConfig config_;
  torch::Device device_;
  std::unique_ptr<FeatureExtractor> features_;
  int64_t step_ = 0;
  int64_t num_patches_ = 0;
  bool flipped_ = false;  // the current step's flip-equivariance draw
  Collectives* dist_ = nullptr;
  std::unique_ptr<GradientReducer> reduce_D_, reduce_GF_;  // set_distributed(..., overlap)
  int saved_world_ = 1;
  int64_t bytes_all_reduced_ = 0;
};

}  // namespace trainer
