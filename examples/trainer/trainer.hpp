// One CUT-style training iteration and the state it needs (networks, optimisers, step counter),
// with checkpoints that make `--resume` continue bit-for-bit.
//
//   L_D = 1/2 [ (D(y) - 1)^2 + D(G(x))^2 ]                                   (LSGAN)
//   L_G = lambda_GAN (D(G(x)) - 1)^2 + lambda * ( L_c(X, G(X)) + L_c(Y, G(Y)) ) / 2   (paper Eq. 10-11)
//
// with L_c the contrastive loss of the library (GraphNCELoss, PatchNCELoss or PatchNCELoss::put),
// computed on features of the input (keys) and of the translation (queries). G(Y) comes from
// running the generator on the concatenated batch [X; Y], as the reference code does.
#pragma once

#include "config.hpp"
#include "discriminator.hpp"
#include "generator.hpp"
#include "vgg16.hpp"

#include <patchgcl/patchgcl.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <memory>
#include <unistd.h>

namespace trainer {

/// Maps images to the feature maps the contrastive loss compares; one per loss layer.
class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  virtual std::vector<torch::Tensor> operator()(const torch::Tensor& images) = 0;
  /// Channels of each returned map, the `in_channels` of the loss.
  virtual std::vector<int64_t> channels() const = 0;
};

/// CUT: the generator's own encoder activations (layers 0,4,8,12,16 by default); gradients of the
/// contrastive loss flow into the encoder through both the query and (for the identity term) the key path.
class EncoderFeatures : public FeatureExtractor {
 public:
  EncoderFeatures(ResnetGenerator generator, std::vector<int64_t> layers)
      : generator_(std::move(generator)), layers_(std::move(layers)) {}
  std::vector<torch::Tensor> operator()(const torch::Tensor& images) override { return generator_->encode(images, layers_); }
  std::vector<int64_t> channels() const override { return generator_->channels(layers_); }

 private:
  ResnetGenerator generator_;
  std::vector<int64_t> layers_;
};

/// PatchGCL: frozen ImageNet VGG16 at relu3_1, relu4_1, relu4_3.
class VGG16FeatureExtractor : public FeatureExtractor {
 public:
  explicit VGG16FeatureExtractor(VGG16Features vgg) : vgg_(std::move(vgg)) { vgg_->eval(); }
  std::vector<torch::Tensor> operator()(const torch::Tensor& images) override {
    return vgg_->forward(images, VGG16FeaturesImpl::paper_layers());
  }
  std::vector<int64_t> channels() const override { return {256, 512, 512}; }

 private:
  VGG16Features vgg_;
};

/// The library loss behind one call signature; `module` owns the heads (CUT's netF).
struct ContrastiveCriterion {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>&)> forward;
};

inline ContrastiveCriterion make_criterion(LossKind kind, std::vector<int64_t> channels, int64_t num_patches) {
  switch (kind) {
    case LossKind::kGraph: {
      auto options = patchgcl::GraphNCELossOptions(std::move(channels));
      options.num_patches(num_patches);
      patchgcl::GraphNCELoss loss(options);
      return {loss.ptr(), [loss](const auto& q, const auto& k) mutable { return loss->forward(q, k); }};
    }
    case LossKind::kPatchNCE:
    case LossKind::kPUT: {
      auto options = kind == LossKind::kPUT ? patchgcl::PatchNCELossOptions::put(std::move(channels))
                                            : patchgcl::PatchNCELossOptions(std::move(channels));
      options.num_patches(num_patches);
      patchgcl::PatchNCELoss loss(options);
      return {loss.ptr(), [loss](const auto& q, const auto& k) mutable { return loss->forward(q, k); }};
    }
  }
  throw std::logic_error("unhandled loss kind");
}

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
  torch::Tensor to_tensor() const {
    return torch::tensor({sum.D, sum.G_GAN, sum.NCE, sum.NCE_Y, sum.G, static_cast<double>(steps)}, torch::kFloat64);
  }
  static LogWindow from_tensor(const torch::Tensor& t) {
    auto v = t.to(torch::kCPU, torch::kFloat64).contiguous();
    if (v.numel() != 6) throw std::runtime_error("checkpoint: log_window must hold 6 numbers, got " + std::to_string(v.numel()));
    const double* p = v.data_ptr<double>();
    LogWindow w;
    w.sum = {p[0], p[1], p[2], p[3], p[4]};
    w.steps = static_cast<int64_t>(p[5]);
    return w;
  }
};

/// fsync(2) of a file or folder, so that what was written (or renamed into a folder) survives a
/// power loss, not only a killed process. Folders that cannot be synced (EINVAL on some file
/// systems) are skipped; any other failure throws.
inline void sync_to_disk(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open '" + path.string() + "' to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    throw std::runtime_error("cannot sync '" + path.string() + "' to disk: " + std::strerror(err));
}

class Trainer {
 public:
  Trainer(TrainConfig config, torch::Device device, const std::string& vgg_weights = "")
      : config_(std::move(config)), device_(device) {
    config_.validate();
    torch::manual_seed(config_.seed);
    G = ResnetGenerator(GeneratorOptions().ngf(config_.ngf).n_blocks(config_.n_blocks));
    D = PatchDiscriminator(DiscriminatorOptions().ndf(config_.ndf));
    G->to(device_);
    D->to(device_);
    if (config_.features == FeatureKind::kEncoder) {
      features_ = std::make_unique<EncoderFeatures>(G, G->default_nce_layers());
    } else {
      VGG16Features vgg;
      if (vgg_weights.empty())
        throw std::invalid_argument("--features vgg16 needs --vgg-weights FILE (see docs/trainer.md for the export one-liner)");
      vgg->load_weights(vgg_weights);
      vgg->to(device_);
      features_ = std::make_unique<VGG16FeatureExtractor>(vgg);
    }
    F = make_criterion(config_.loss, features_->channels(), patches_for(config_.synthetic_size_or_crop()));
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
  int64_t step() const { return step_; }

  /// One iteration (CUT's optimize_parameters) on `batch`; advances the step counter.
  /// All randomness inside (patch sampling of the loss) is seeded from (seed, step), so a resumed
  /// run draws exactly what the uninterrupted run would have drawn.
  StepLosses train_step(const Batch& batch) {
    torch::manual_seed(mix_seed(config_.seed, static_cast<uint64_t>(step_), 3));
    set_learning_rate(config_.lr * config_.lr_factor(step_));
    G->train();
    D->train();
    auto real_A = batch.real_A.to(device_), real_B = batch.real_B.to(device_);
    const int64_t n = real_A.size(0);
    auto real = config_.nce_idt ? torch::cat({real_A, real_B}) : real_A;
    auto fake = G->forward(real);
    auto fake_B = fake.narrow(0, 0, n);

    StepLosses out;
    // Discriminator.
    set_requires_grad(*D, true);
    opt_D->zero_grad();
    auto loss_D = 0.5 * (D->forward(fake_B.detach()).pow(2).mean() + (D->forward(real_B) - 1).pow(2).mean());
    loss_D.backward();
    opt_D->step();
    out.D = loss_D.item<double>();

    // Generator and contrastive heads.
    set_requires_grad(*D, false);
    opt_G->zero_grad();
    opt_F->zero_grad();
    auto loss_G_GAN = (D->forward(fake_B) - 1).pow(2).mean() * config_.lambda_gan;
    auto loss_NCE = contrastive(real_A, fake_B);
    torch::Tensor loss_G;
    if (config_.nce_idt) {
      auto loss_NCE_Y = contrastive(real_B, fake.narrow(0, n, n));
      loss_G = loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y);
      out.NCE_Y = loss_NCE_Y.item<double>();
    } else {
      loss_G = loss_G_GAN + loss_NCE;
    }
    loss_G.backward();
    opt_G->step();
    opt_F->step();
    out.G_GAN = loss_G_GAN.item<double>();
    out.NCE = loss_NCE.item<double>();
    out.G = loss_G.item<double>();
    ++step_;
    return out;
  }

  /// lambda * L_c(src, G(src)) with queries from the translation and keys from the source.
  torch::Tensor contrastive(const torch::Tensor& source, const torch::Tensor& translated) {
    return F.forward((*features_)(translated), (*features_)(source)) * config_.lambda();
  }

  /// Translation in eval mode without gradients.
  torch::Tensor translate(const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    G->eval();
    return G->forward(images.to(device_));
  }

  /// Writes networks, optimiser states, step, log window and configuration to `path` atomically:
  /// the archive goes to `path`.tmp, is fsync'ed, renamed over `path`, and the folder is fsync'ed,
  /// so a killed process or a power loss leaves either the previous checkpoint or the new one,
  /// never a torn file. A `.tmp` left by a killed write is simply overwritten by the next save.
  void save(const std::filesystem::path& path) const {
    torch::serialize::OutputArchive archive;
    archive.write("config", c10::IValue(config_.serialize()));
    archive.write("step", c10::IValue(step_));
    archive.write("log_window", log_window.to_tensor());
    archive.write("format", c10::IValue(std::string("patchgcl-trainer-1")));
    auto sub = [&](const std::string& key, const auto& writer) {
      torch::serialize::OutputArchive a;
      writer(a);
      archive.write(key, a);
    };
    sub("G", [&](auto& a) { G->save(a); });
    sub("D", [&](auto& a) { D->save(a); });
    sub("F", [&](auto& a) { F.module->save(a); });
    sub("opt_G", [&](auto& a) { opt_G->save(a); });
    sub("opt_D", [&](auto& a) { opt_D->save(a); });
    sub("opt_F", [&](auto& a) { opt_F->save(a); });
    const auto tmp = std::filesystem::path(path.string() + ".tmp");
    archive.save_to(tmp.string());
    sync_to_disk(tmp, false);
    std::filesystem::rename(tmp, path);
    sync_to_disk(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."), true);
  }

  /// Reads the configuration a checkpoint was written with.
  static TrainConfig read_config(const std::filesystem::path& path) {
    if (!std::filesystem::is_regular_file(path)) throw std::runtime_error("checkpoint '" + path.string() + "' does not exist");
    torch::serialize::InputArchive archive;
    open_archive(archive, path, torch::kCPU);
    c10::IValue format, config;
    if (!archive.try_read("format", format) || !archive.try_read("config", config))
      throw std::runtime_error("'" + path.string() + "' is not a checkpoint of this trainer");
    return TrainConfig::deserialize(config.toStringRef());
  }

  /// Restores everything `save` wrote; refuses a checkpoint of a different configuration.
  void load(const std::filesystem::path& path) {
    TrainConfig saved = read_config(path);
    auto diff = saved.differences(config_);
    if (!diff.empty()) {
      std::string msg = "checkpoint '" + path.string() + "' was written with a different configuration:";
      for (const auto& d : diff) msg += "\n  " + d;
      throw std::runtime_error(msg + "\nrun the same command as the original run, adding --resume");
    }
    torch::serialize::InputArchive archive;
    open_archive(archive, path, device_);
    c10::IValue step;
    archive.read("step", step);
    step_ = step.toInt();
    torch::Tensor window;
    log_window = archive.try_read("log_window", window) ? LogWindow::from_tensor(window) : LogWindow{};
    auto sub = [&](const std::string& key, const auto& reader) {
      torch::serialize::InputArchive a;
      archive.read(key, a);
      reader(a);
    };
    sub("G", [&](auto& a) { G->load(a); });
    sub("D", [&](auto& a) { D->load(a); });
    sub("F", [&](auto& a) { F.module->load(a); });
    sub("opt_G", [&](auto& a) { opt_G->load(a); });
    sub("opt_D", [&](auto& a) { opt_D->load(a); });
    sub("opt_F", [&](auto& a) { opt_F->load(a); });
  }

  /// Opens a checkpoint archive; an unreadable file (truncated, not a checkpoint) gets an error naming it.
  static void open_archive(torch::serialize::InputArchive& archive, const std::filesystem::path& path,
                           torch::Device device) {
    try {
      archive.load_from(path.string(), device);
    } catch (const c10::Error& e) {
      throw std::runtime_error("checkpoint '" + path.string() + "' cannot be read (truncated, or not written by "
                               "patchgcl-trainer): " + e.what_without_backtrace());
    }
  }

  ResnetGenerator G{nullptr};
  PatchDiscriminator D{nullptr};
  ContrastiveCriterion F;
  /// Losses since the last log line (train() fills it; saved and restored with the checkpoint).
  LogWindow log_window;

 private:
  int64_t patches_for(int64_t image_size) {
    torch::NoGradGuard no_grad;
    num_patches_ = config_.num_patches;
    for (const auto& f : (*features_)(torch::zeros({1, 3, image_size, image_size}, torch::TensorOptions().device(device_))))
      num_patches_ = std::min(num_patches_, f.size(2) * f.size(3));
    return num_patches_;
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
  std::unique_ptr<torch::optim::Adam> opt_G, opt_D, opt_F;
  int64_t step_ = 0;
  int64_t num_patches_ = 0;
};

}  // namespace trainer
