// The .pgt reader on hostile files (truncated, oversized, malformed headers and records): every input below is written
// inline, byte for byte, and was read without an error, read out of bounds, allocated from unchecked fields or let a
// standard exception escape before the reader validated its header. Crash inputs found by fuzz/ (scripts/fuzz.sh) are
// added here as well.

#include <patchgcl/io/tensor_file.hpp>

#include "support/fixture.hpp"
#include "support/temp_file.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace io = patchgcl::io;

namespace {

/// A .pgt file of the test's bytes (removed by the destructor).
struct PgtFile : patchgcl_test::TempFile {
  explicit PgtFile(const std::string& bytes) : patchgcl_test::TempFile(bytes, "tensor_file_test", ".pgt") {}
};

struct PgtRefusal {
  bool refused = false;
  std::string what, field;
  int64_t line = -1;
};

/// Reads `bytes` as a file: a TensorFileError is the expected outcome; any other exception fails
/// the test that called it (it escapes).
PgtRefusal read_pgt_bytes(const std::string& bytes) {
  PgtFile file(bytes);
  PgtRefusal r;
  try {
    io::read_tensor_file(file.path);
  } catch (const io::TensorFileError& e) {
    r.refused = true;
    r.what = e.what();
    r.field = e.field();
    r.line = e.line();
    CHECK(r.what.find("'" + file.path + "'") != std::string::npos);  // names the file
    CHECK(e.path() == file.path);
  }
  return r;
}

#define CHECK_REFUSED(bytes, line_no, field_name, text) \
  do {                                                  \
    const auto r_ = read_pgt_bytes(bytes);              \
    INFO("message: " << r_.what);                       \
    CHECK(r_.refused);                                  \
    CHECK(r_.line == (line_no));                        \
    CHECK(r_.field == (field_name));                    \
    CHECK_THAT(r_.what, Catch::Contains(text));         \
  } while (false)

std::string bytes_of(const std::vector<int64_t>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
}

using patchgcl_test::zeros;

}  // namespace

TEST_CASE("read_tensor_file refuses negative offsets instead of wrapping them to 2^64 - k", "[tensor_file]") {
  // The file: `3-1` was read as the extent 3 and the offset -1, i.e. 2^64 - 1, and
  // `offset + nbytes` wrapped past the bounds check: 4096 heap bytes came back.
  CHECK_REFUSED("PGT1\ntensor i i64 1 3-1 24\n\n" + zeros(24), 2, "ndim", "needs 7 fields");
  // offset -4096 + nbytes 4096 wrapped to 0: the old reader copied the 4096 bytes before the file's buffer.
  CHECK_REFUSED("PGT1\ntensor i i64 1 512 -4096 4096\n\n" + zeros(4096), 2, "offset", "got '-4096'");
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 -1 24\n\n" + zeros(24), 2, "offset", "got '-1'");
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 -100000000 24\n\n" + zeros(24), 2, "offset", "non-negative");
  // -1 spelled as the unsigned number it wrapped to, and offsets whose sum with nbytes overflows.
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 18446744073709551615 24\n\n" + zeros(24), 2, "offset", "non-negative");
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 9223372036854775800 24\n\n" + zeros(24), 2, "offset",
                "outside the data section of 24 bytes");
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 8 24\n\n" + zeros(24), 2, "offset", "outside the data section");
  CHECK_REFUSED("PGT1\ntensor i i64 1 3 +0 24\n\n" + zeros(24), 2, "offset", "got '+0'");
}

TEST_CASE("read_tensor_file checks ndim, shape and nbytes before it allocates", "[tensor_file]") {
  // A 30-byte file used to request a 14.7 GB std::vector, a negative ndim threw std::length_error.
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 1837244121 \n\n"), 2, "line", "empty field");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 1837244121 0 0\n\n"), 2, "ndim", "[0, 64]");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 -1 0 0\n\n"), 2, "ndim", "got '-1'");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 65 0 0\n\n"), 2, "ndim", "[0, 64]");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 3 1 1 0 4\n\n") + zeros(4), 2, "ndim", "needs 9 fields");
  // A huge shape called torch::empty (73.8 GB) before the extent was compared with the file.
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 2 100000 184467 0 73786800000\n\n"), 2, "offset",
                "outside the data section of 0 bytes");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 2 4294967296 4294967296 0 0\n\n"), 2, "shape[1]", "2^63 - 1");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 2 2 4611686018427387904 0 0\n\n"), 2, "shape[1]", "2^63 - 1");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 1 4611686018427387904 0 0\n\n"), 2, "shape", "2^63 - 1 bytes");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 1 99999999999999999999 0 0\n\n"), 2, "shape[0]", "non-negative");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 1 abc 0 0\n\n"), 2, "shape[0]", "got 'abc'");
  CHECK_REFUSED("PGT1\ntensor t f32 1 2 0 12\n\n" + zeros(12), 2, "nbytes", "need 8 bytes, got 12");
  CHECK_REFUSED("PGT1\ntensor t f16 1 2 0 4\n\n" + zeros(4), 2, "dtype", "got 'f16'");
  CHECK_REFUSED("PGT1\ntensor t f32 1 x2 0 8\n\n" + zeros(8), 2, "shape[0]", "got 'x2'");
}

TEST_CASE("read_tensor_file names the file, line and field of a malformed header", "[tensor_file]") {
  CHECK_REFUSED(std::string(""), 1, "magic", "PGT1");
  CHECK_REFUSED(std::string("PGT2\n\n"), 1, "magic", "PGT1");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 0 0 4\n") + zeros(4), 0, "header", "no empty line");
  CHECK_REFUSED(std::string("PGT1\nconfig a b\nweights t f32 0 0 4\n\n") + zeros(4), 3, "kind", "got 'weights'");
  CHECK_REFUSED(std::string("PGT1\nconfig a\n\n"), 2, "config", "got 2 fields");
  CHECK_REFUSED(std::string("PGT1\nconfig a b c\n\n"), 2, "config", "got 4 fields");
  CHECK_REFUSED(std::string("PGT1\ntensor t f32 0 0 4\r\n\n") + zeros(4), 2, "line", "'\\x0d' at column 19");
  CHECK_REFUSED(std::string("PGT1\ntensor t  f32 0 0 4\n\n") + zeros(4), 2, "line", "empty field 3");
  CHECK_REFUSED(std::string("PGT1\ntensor t\n\n"), 2, "tensor", "got 2 fields");
  CHECK_REFUSED(std::string("PGT1\nconfig k v\xff\n\n"), 2, "line", "'\\xff'");
  try {
    io::read_tensor_file("no/such/dir/file.pgt");
    FAIL("a missing file was read");
  } catch (const io::TensorFileError& e) {
    CHECK(e.field() == "file");
    CHECK_THAT(e.what(), Catch::Contains("'no/such/dir/file.pgt'") && Catch::Contains("cannot open"));
  }
}

TEST_CASE("read_tensor_file refuses duplicate tensor names and duplicate config keys", "[tensor_file]") {
  // The last one used to win silently.
  CHECK_REFUSED("PGT1\ntensor w f64 0 0 8\ntensor w f64 0 8 8\n\n" + zeros(16), 3, "name",
                "duplicate tensor name 'w' (first on line 2)");
  CHECK_REFUSED(std::string("PGT1\nconfig nc 16\nconfig hops 2\nconfig nc 256\n\n"), 4, "key",
                "duplicate config key 'nc' (first on line 2)");
}

TEST_CASE("read_tensor_file refuses bytes of the data section that belong to no tensor", "[tensor_file]") {
  const std::string valid = "PGT1\ntensor a i64 1 2 0 16\ntensor b i64 0 16 8\n\n" + bytes_of({1, 2, 3});
  CHECK(io::parse_tensor_file(valid).at("b").item<int64_t>() == 3);
  // Trailing garbage used to be accepted silently.
  CHECK_REFUSED(valid + "xyz", 0, "data", "3 bytes after the end of the last tensor");
  CHECK_REFUSED(std::string("PGT1\n\ngarbage"), 0, "data", "7 bytes");
  // A gap, and two tensors reading the same bytes.
  CHECK_REFUSED("PGT1\ntensor a i64 1 2 8 16\n\n" + zeros(24), 2, "offset", "8 bytes of the data section before");
  CHECK_REFUSED("PGT1\ntensor a i64 1 2 0 16\ntensor b i64 0 8 8\n\n" + zeros(16), 3, "offset",
                "overlap those of tensor 'a' (line 2)");
}

TEST_CASE("read_tensor_file reads every dtype, 0-d and zero-size tensors and config entries exactly", "[tensor_file]") {
  std::string blob;
  const double half = 0.5;
  const float f[] = {1.f, -2.f, 3.5f, 4.f, 5.f, 6.f};
  blob.append(bytes_of({7, -8, 9}));
  blob.append(reinterpret_cast<const char*>(&half), 8);
  blob.append(reinterpret_cast<const char*>(f), sizeof f);
  const auto file = io::parse_tensor_file(
      "PGT1\nconfig in_channels 3,-5,8\nconfig nc 16\nconfig threshold -1e-3\n"
      "tensor ids i64 1 3 0 24\ntensor loss f64 0 24 8\ntensor w f32 2 2 3 32 24\n"
      "tensor z f32 3 2 0 3 56 0\ntensor zz i64 1 0 56 0\n\n" +
      blob);
  CHECK(torch::equal(file.at("ids"), torch::tensor({7, -8, 9}, torch::kInt64)));
  CHECK(file.at("loss").dim() == 0);
  CHECK(file.at("loss").item<double>() == 0.5);
  CHECK(torch::equal(file.at("w"), torch::tensor({1.f, -2.f, 3.5f, 4.f, 5.f, 6.f}).reshape({2, 3})));
  CHECK(file.at("z").sizes().vec() == std::vector<int64_t>{2, 0, 3});
  CHECK(file.at("zz").numel() == 0);
  CHECK(file.config_ints("in_channels") == std::vector<int64_t>{3, -5, 8});
  CHECK(file.config_int("nc") == 16);
  CHECK(file.config_double("threshold") == -1e-3);
}

TEST_CASE("Every committed fixture still reads, and write_tensor_file's output reads back", "[tensor_file]") {
  for (const char* name : {"converted_patchgcl_small", "graph_nce_released", "graph_nce_small", "patchnce_cut",
                           "patchnce_put_code", "patchnce_put_paper", "tagconv_dgl", "tagconv_pyg", "topk_pool_pyg"}) {
    INFO(name);
    const auto f = io::read_tensor_file(std::string(patchgcl_test::fixture_dir()) + "/" + name + ".pgt");
    CHECK(!f.tensors.empty());
  }
  std::map<std::string, torch::Tensor> tensors{{"a", torch::zeros({0, 4})},
                                               {"b", torch::tensor(2.5, torch::kFloat64)},
                                               {"c", torch::arange(6, torch::kInt64).reshape({2, 3})}};
  const std::string path = "tensor_file_roundtrip.pgt";
  io::write_tensor_file(path, tensors, {{"k", "v"}});
  const auto back = io::read_tensor_file(path);
  std::remove(path.c_str());
  for (const auto& kv : tensors) CHECK(torch::equal(back.at(kv.first), kv.second));
  CHECK(back.config_string("k") == "v");
  // What the reader would refuse is not written.
  CHECK_THROWS_WITH(io::write_tensor_file(path, {{"two words", torch::zeros({1})}}),
                    Catch::Contains("tensor name 'two words'"));
  CHECK_THROWS_WITH(io::write_tensor_file(path, {}, {{"key", ""}}), Catch::Contains("config key 'key'"));
  std::remove(path.c_str());
}

TEST_CASE("Config accessors refuse malformed numbers with an error naming the entry", "[tensor_file]") {
  // std::stoll / std::stod used to throw std::invalid_argument or std::out_of_range, or stop at
  // the first bad character ("16abc" was 16).
  const auto f = io::parse_tensor_file(
      "PGT1\nconfig big 99999999999999999999\nconfig list 3,,5\nconfig nan nan\nconfig text abc\n"
      "config trailing 16abc\n\n");
  CHECK_THROWS_AS(f.config_int("text"), c10::Error);
  CHECK_THROWS_WITH(f.config_int("text"), Catch::Contains("config entry 'text'") && Catch::Contains("'abc'"));
  CHECK_THROWS_WITH(f.config_int("trailing"), Catch::Contains("'16abc'"));
  CHECK_THROWS_WITH(f.config_int("big"), Catch::Contains("config entry 'big'"));
  CHECK_THROWS_WITH(f.config_ints("list"), Catch::Contains("config entry 'list'"));
  CHECK_THROWS_WITH(f.config_double("text"), Catch::Contains("config entry 'text'"));
  CHECK_THROWS_WITH(f.config_double("nan"), Catch::Contains("finite decimal number"));
  CHECK(f.config_double("big") == 1e20);
}

TEST_CASE("load_parameters refuses integer data for floating-point parameters, naming both dtypes", "[tensor_file]") {
  torch::nn::Linear lin(2, 2);
  const auto before = lin->weight.clone();
  io::TensorFile f;
  f.tensors["weight"] = torch::tensor({1, 2, 3, 4}, torch::kInt64).reshape({2, 2});
  f.tensors["bias"] = torch::zeros({2}, torch::kFloat64);
  CHECK_THROWS_WITH(io::load_parameters(*lin, f),
                    Catch::Contains("parameter 'weight' has dtype Float but tensor 'weight' has dtype Long"));
  CHECK(torch::equal(lin->weight, before));  // nothing loaded
  // Another floating-point precision is converted (the parity tests load float64 into float32).
  f.tensors["weight"] = torch::tensor({1., 2., 3., 4.}, torch::kFloat64).reshape({2, 2});
  io::load_parameters(*lin, f);
  CHECK(torch::equal(lin->weight, torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2})));
}

TEST_CASE("load_parameters refuses NaN and Inf values by default, naming the parameter", "[tensor_file]") {
  torch::nn::Linear lin(2, 2);
  const auto before = lin->weight.clone();
  io::TensorFile f;
  f.tensors["weight"] = torch::tensor({1., std::numeric_limits<double>::quiet_NaN(), 3., 4.}).reshape({2, 2});
  f.tensors["bias"] = torch::zeros({2}, torch::kFloat64);
  CHECK_THROWS_WITH(io::load_parameters(*lin, f),
                    Catch::Contains("tensor 'weight' for parameter 'weight' has 1 non-finite value(s)") &&
                        Catch::Contains("flat index 1"));
  CHECK(torch::equal(lin->weight, before));
  // A float64 value beyond float32's range becomes Inf in the cast: refused as well.
  f.tensors["weight"] = torch::tensor({1., 1e300, 3., 4.}, torch::kFloat64).reshape({2, 2});
  CHECK_THROWS_WITH(io::load_parameters(*lin, f), Catch::Contains("out of the range of Float"));
  CHECK(torch::equal(lin->weight, before));
  io::load_parameters(*lin, f, io::LoadParametersOptions().allow_non_finite(true));
  CHECK(std::isinf(lin->weight[0][1].item<float>()));
}

TEST_CASE("A file with out-of-bounds extents never reaches load_parameters", "[tensor_file]") {
  // Another file of the issue loaded heap bytes beyond the file into a module's weights, and
  // load_parameters reported success: the read is now refused.
  torch::nn::Linear lin(2, 2);
  const std::string bytes =
      "PGT1\ntensor bias f32 1 2 0 8\ntensor weight f32 2 2 2 18446744073709551608 16\n\n" + zeros(8);
  const auto r = read_pgt_bytes(bytes);
  CHECK(r.refused);
  CHECK(r.line == 3);
  CHECK(r.field == "offset");
}
