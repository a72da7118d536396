// What the tensor-file parser targets (pgt_parse, safetensors_parse) check of each tensor a parse
// accepts. A violated check aborts: libFuzzer reports it as a finding.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fuzz_check {

inline void require(bool ok) {
  if (!ok) std::abort();
}

/// A tensor's bytes, `nbytes` at `data`, number `expected_nbytes` (its shape times its dtype's
/// size) and lie inside the input `[input, input + size)`; every one of them is read, so that ASan
/// reports a read outside the input. Returns `nbytes`.
inline int64_t check_tensor_bytes(const char* input, size_t size, const char* data, int64_t nbytes,
                                  int64_t expected_nbytes) {
  require(nbytes == expected_nbytes);
  require(data >= input && nbytes <= static_cast<int64_t>(size) && data - input <= static_cast<int64_t>(size) - nbytes);
  std::vector<char> copy(static_cast<size_t>(nbytes));
  if (nbytes > 0) std::memcpy(copy.data(), data, copy.size());
  return nbytes;
}

}  // namespace fuzz_check
