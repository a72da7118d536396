#pragma once

// The one place where LibTorch 1.13 (Debian, CI) and 2.x (most users) differ for patchgcl.
// Everything else in the library uses API present in both.

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace patchgcl {

// c10::optional became an alias of std::optional in 2.x; both spell `c10::optional`.
template <typename T>
using optional = c10::optional<T>;
using c10::nullopt;

namespace compat {

/// True when the LibTorch this translation unit is compiled against is 2.0 or newer.
constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

/// Reduced-precision floating types: patchgcl computes logits and norms of these in float32.
inline bool is_reduced_float(c10::ScalarType t) { return t == c10::ScalarType::Half || t == c10::ScalarType::BFloat16; }

// ---------------------------------------------------------------- for the tests and benchmarks

/// Calls `callback(message)` for every TORCH_WARN raised while it lives, instead of printing it:
/// c10's handler API is `process(SourceLocation, msg, verbatim)` under c10::Warning in 1.13 and
/// `process(const c10::Warning&)` under c10::WarningUtils in 2.x.
class ScopedWarningCallback final : public c10::WarningHandler {
 public:
  explicit ScopedWarningCallback(std::function<void(const std::string&)> callback)
      : callback_(std::move(callback)), previous_(handler_api::get_warning_handler()) {
    handler_api::set_warning_handler(this);
  }
  ~ScopedWarningCallback() override { handler_api::set_warning_handler(previous_); }
  ScopedWarningCallback(const ScopedWarningCallback&) = delete;
  ScopedWarningCallback& operator=(const ScopedWarningCallback&) = delete;

#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { callback_(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { callback_(msg); }
#endif

 private:
#if TORCH_VERSION_MAJOR >= 2
  struct handler_api {
    static c10::WarningHandler* get_warning_handler() { return c10::WarningUtils::get_warning_handler(); }
    static void set_warning_handler(c10::WarningHandler* h) { c10::WarningUtils::set_warning_handler(h); }
  };
#else
  struct handler_api {
    static c10::WarningHandler* get_warning_handler() { return c10::Warning::get_warning_handler(); }
    static void set_warning_handler(c10::WarningHandler* h) { c10::Warning::set_warning_handler(h); }
  };
#endif
  std::function<void(const std::string&)> callback_;
  c10::WarningHandler* previous_;
};

}  // namespace compat
}  // namespace patchgcl

// c10::Allocator (benchmarks/bench_losses.cpp wraps the CPU allocator): since LibTorch 2.3,
// allocate() is no longer const and copy_data() is a new pure virtual.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define PATCHGCL_ALLOCATOR_ALLOCATE_CONST
#define PATCHGCL_ALLOCATOR_HAS_COPY_DATA 1
#else
#define PATCHGCL_ALLOCATOR_ALLOCATE_CONST const
#define PATCHGCL_ALLOCATOR_HAS_COPY_DATA 0
#endif
