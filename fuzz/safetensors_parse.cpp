// libFuzzer target: the safetensors header parser (include/patchgcl/io/safetensors_format.hpp),
// without LibTorch. Every input must either parse into tensors whose extents lie inside the input,
// agree with their shapes and tile the data section, or be refused with a TensorFileError naming
// the file and a field; any other exception, crash, sanitizer report, leak or allocation beyond
// -malloc_limit_mb is a finding. scripts/fuzz.sh runs it.
#include <patchgcl/io/safetensors_format.hpp>

#include "tensor_bytes_check.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace patchgcl::io;
  using fuzz_check::require;
  const char* bytes = reinterpret_cast<const char*>(data);
  try {
    const auto contents = detail::parse_safetensors_bytes(bytes, size, "fuzz.safetensors");
    int64_t total = 0;
    for (const auto& t : contents.tensors) {
      require(static_cast<int64_t>(t.shape.size()) <= kSafetensorsMaxDims);
      int64_t numel = 1;
      for (auto d : t.shape) {
        require(d >= 0);
        numel *= d;
      }
      require(t.begin >= 0);
      total += fuzz_check::check_tensor_bytes(bytes, size, t.data, t.end - t.begin,
                                              numel * detail::st_element_size(t.dtype));
    }
    require(total <= static_cast<int64_t>(size));
  } catch (const TensorFileError& e) {
    require(std::string(e.what()).find("read_safetensors: 'fuzz.safetensors'") == 0 && !e.field().empty());
  }
  return 0;
}
