// libFuzzer target: the `.pgt` header parser (include/patchgcl/io/pgt_format.hpp), without LibTorch.
// Every input must either parse into tensors whose extents lie inside the input and agree with
// their shapes, or be refused with a TensorFileError; any other exception, crash, sanitizer report,
// leak or allocation beyond -malloc_limit_mb is a finding. scripts/fuzz.sh runs it.
#include <patchgcl/io/pgt_format.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace patchgcl::io;
  const char* bytes = reinterpret_cast<const char*>(data);
  try {
    const auto contents = detail::parse_pgt(bytes, size, "fuzz.pgt");
    int64_t total = 0;
    for (const auto& t : contents.tensors) {
      int64_t numel = 1;
      for (auto d : t.shape) numel *= d;
      require(t.nbytes == numel * detail::pgt_element_size(t.dtype));
      require(t.data >= bytes && t.nbytes <= static_cast<int64_t>(size) && t.data - bytes <= static_cast<int64_t>(size) - t.nbytes);
      // Touch every byte the tensor claims: ASan reports a read outside the input.
      std::vector<char> copy(static_cast<size_t>(t.nbytes));
      if (t.nbytes > 0) std::memcpy(copy.data(), t.data, copy.size());
      total += t.nbytes;
    }
    require(total <= static_cast<int64_t>(size));
  } catch (const TensorFileError& e) {
    require(std::string(e.what()).find("'fuzz.pgt'") != std::string::npos && !e.field().empty());
  }
  return 0;
}
