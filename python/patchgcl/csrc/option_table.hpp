#pragma once
// A loss's options by their C++ names (nested ones dotted: "adjacency.threshold"), typed: one
// entry per option, holding the field it writes and reads. The Python side sets options through
// the loss holder's typed setters (loss_holder.hpp) and lists them with `option_names`; an
// unknown name, a value of the wrong type or an enum name not in the list is an error naming the
// option, the expected and the given value.
#include "enums.hpp"

#include <ATen/core/ivalue.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl_python {

template <typename Options>
class OptionTable {
 public:
  explicit OptionTable(const char* fn) : fn_(fn) {}

  /// An int, float, bool, int list or float list option; `field` gives the field to write.
  template <typename T>
  OptionTable& add(const char* name, T& (*field)(Options&)) {
    const char* fn = fn_;
    entries_.push_back(
        {name, [field, name, fn](Options& o, const c10::IValue& v) { field(o) = convert(v, fn, name, (T*)nullptr); }});
    return *this;
  }

  /// An enum option, given by its name in `names` (enums.hpp).
  template <typename E>
  OptionTable& add(const char* name, E& (*field)(Options&), const Names<E>& names) {
    const char* fn = fn_;
    entries_.push_back({name, [field, name, fn, &names](Options& o, const c10::IValue& v) {
                          if (!v.isString()) wrong_type(fn, name, "a string", v);
                          field(o) = by_name(names, v.toStringRef(), fn, name, "option ");
                        }});
    return *this;
  }

  void set(Options& o, const std::string& name, const c10::IValue& value) const {
    for (const auto& e : entries_) {
      if (name == e.name) return e.set(o, value);
    }
    TORCH_CHECK(false, fn_, ": unknown option `", name, "`");
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.emplace_back(e.name);
    return out;
  }

 private:
  struct Entry {
    const char* name;
    std::function<void(Options&, const c10::IValue&)> set;
  };

  [[noreturn]] static void wrong_type(const char* fn, const char* name, const char* expected, const c10::IValue& v) {
    TORCH_CHECK(false, fn, ": option `", name, "` must be ", expected, ", got ", v.tagKind());
  }
  static double convert(const c10::IValue& v, const char* fn, const char* name, double*) {
    if (v.isDouble()) return v.toDouble();
    if (v.isInt()) return static_cast<double>(v.toInt());
    wrong_type(fn, name, "a number", v);
  }
  static int64_t convert(const c10::IValue& v, const char* fn, const char* name, int64_t*) {
    if (!v.isInt()) wrong_type(fn, name, "an int", v);
    return v.toInt();
  }
  static bool convert(const c10::IValue& v, const char* fn, const char* name, bool*) {
    if (!v.isBool()) wrong_type(fn, name, "a bool", v);
    return v.toBool();
  }
  static std::vector<int64_t> convert(const c10::IValue& v, const char* fn, const char* name, std::vector<int64_t>*) {
    if (!v.isIntList()) wrong_type(fn, name, "a list of ints", v);
    return v.toIntVector();
  }
  static std::vector<double> convert(const c10::IValue& v, const char* fn, const char* name, std::vector<double>*) {
    if (v.isDoubleList()) return v.toDoubleVector();
    if (!v.isIntList()) wrong_type(fn, name, "a list of numbers", v);
    std::vector<double> out;
    for (auto x : v.toIntVector()) out.push_back(static_cast<double>(x));
    return out;
  }

  const char* fn_;
  std::vector<Entry> entries_;
};

}  // namespace patchgcl_python
