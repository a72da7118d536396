// libFuzzer target: the `.pgt` header parser (include/patchgcl/io/pgt_format.hpp), without LibTorch.
// Every input must either parse into tensors whose extents lie inside the input and agree with
// their shapes, or be refused with a TensorFileError; any other exception, crash, sanitizer report,
// leak or allocation beyond -malloc_limit_mb is a finding. scripts/fuzz.sh runs it.
#include <patchgcl/io/pgt_format.hpp>

#include "tensor_bytes_check.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace patchgcl::io;
  using fuzz_check::require;
  const char* bytes = reinterpret_cast<const char*>(data);
  try {
    const auto contents = detail::parse_pgt(bytes, size, "fuzz.pgt");
    int64_t total = 0;
    for (const auto& t : contents.tensors) {
      int64_t numel = 1;
      for (auto d : t.shape) numel *= d;
      total += fuzz_check::check_tensor_bytes(bytes, size, t.data, t.nbytes, numel * detail::pgt_element_size(t.dtype));
    }
    require(total <= static_cast<int64_t>(size));
  } catch (const TensorFileError& e) {
    require(std::string(e.what()).find("'fuzz.pgt'") != std::string::npos && !e.field().empty());
  }
  return 0;
}
