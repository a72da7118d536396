// The sample grid of a training run: one row per preview image, input | G(input) | an example of
// the target domain, written to run/samples/step_XXXXXX.png.
#pragma once

#include "trainer/report/report.hpp"
#include "trainer/train/trainer.hpp"

#include <vector>

namespace trainer {

/// input | G(input) | target-domain example, one row per preview image; the input and the example
/// in the channels the networks see them (--input-nc, --output-nc: grayscale shown as gray).
inline Image sample_grid(Trainer& trainer, const std::vector<Image>& inputs, const std::vector<Image>& targets) {
  std::vector<std::vector<Image>> rows;
  const auto as_seen = [](const Image& image, int64_t channels) {
    return channels == 3 ? image : from_tensor(to_channels(to_tensor(image), channels));
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto out = trainer.translate(to_tensor(inputs[i]).unsqueeze(0));
    Image target = targets.empty() ? Image{} : targets[i % targets.size()];
    if (!target.empty() && (target.width != inputs[i].width || target.height != inputs[i].height))
      target = resize(target, inputs[i].width, inputs[i].height);
    if (!target.empty()) target = as_seen(target, trainer.config().output_nc);
    rows.push_back({as_seen(inputs[i], trainer.config().input_nc), from_tensor(out)});
    if (!target.empty()) rows.back().push_back(target);
  }
  return report::grid(rows);
}

}  // namespace trainer
