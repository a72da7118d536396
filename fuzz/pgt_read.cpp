// libFuzzer target: read_tensor_file's whole path (include/patchgcl/io/tensor_file.hpp), LibTorch
// included: parse, allocate with torch::empty, copy the data. The same contract as pgt_parse.cpp:
// tensors that match their header, or a TensorFileError. scripts/fuzz.sh runs it.
#include <patchgcl/io/tensor_file.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace patchgcl::io;
  try {
    const auto file = parse_tensor_file(std::string(reinterpret_cast<const char*>(data), size), "fuzz.pgt");
    int64_t total = 0;
    for (const auto& kv : file.tensors) total += static_cast<int64_t>(kv.second.nbytes());
    if (total > static_cast<int64_t>(size)) std::abort();
  } catch (const TensorFileError&) {
  }
  return 0;
}
