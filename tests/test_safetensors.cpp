// The safetensors reader on hostile files (io/safetensors_format.hpp): every refusal is a file
// written inline, byte for byte, with the field and the words of the message it must get; the
// writer's bytes are pinned; either format loads by content. Crash inputs found by
// fuzz/safetensors_parse.cpp (scripts/fuzz.sh) are added here as well.

#include <patchgcl/io/safetensors.hpp>
#include <patchgcl/patchgcl.hpp>

#include "support/fixture.hpp"
#include "support/temp_file.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace io = patchgcl::io;

namespace {

/// A safetensors file of the test's bytes (removed by the destructor).
struct StFile : patchgcl_test::TempFile {
  explicit StFile(const std::string& bytes, const std::string& suffix = ".safetensors")
      : patchgcl_test::TempFile(bytes, "safetensors_test", suffix) {}
};

/// The 8-byte little-endian length of `header`, the header, then `data`.
std::string st_file(const std::string& header, const std::string& data = "") {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

using patchgcl_test::zeros;

struct StRefusal {
  bool refused = false;
  std::string what, field;
};

/// Reads `bytes` as a file: a TensorFileError is the expected outcome; any other exception fails
/// the test that called it (it escapes).
StRefusal read_st_bytes(const std::string& bytes) {
  StFile file(bytes);
  StRefusal r;
  try {
    io::read_safetensors(file.path);
  } catch (const io::TensorFileError& e) {
    r.refused = true;
    r.what = e.what();
    r.field = e.field();
    CHECK(r.what.find("read_safetensors: '" + file.path + "'") == 0);  // names the reader and the file
    CHECK(e.path() == file.path);
    CHECK(e.line() == 0);
  }
  return r;
}

#define CHECK_ST_REFUSED(bytes, field_name, text) \
  do {                                            \
    const auto r_ = read_st_bytes(bytes);         \
    INFO("message: " << r_.what);                 \
    CHECK(r_.refused);                            \
    CHECK(r_.field == (field_name));              \
    CHECK_THAT(r_.what, Catch::Contains(text));   \
  } while (false)

/// One tensor entry of a header.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, int64_t begin,
                  int64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

}  // namespace

TEST_CASE("read_safetensors bounds the header length by the format's cap and the file's size", "[safetensors]") {
  CHECK_ST_REFUSED(std::string(""), "header length", "0 bytes, fewer than the 8");
  CHECK_ST_REFUSED(std::string("\x10\0\0", 3), "header length", "3 bytes, fewer than the 8");
  // 2^64 - 1: would wrap `8 + N`; 100,000,001: over the cap even in a file that long.
  CHECK_ST_REFUSED(std::string(8, '\xff') + "{}", "header length", "18446744073709551615 bytes is more than");
  CHECK_ST_REFUSED(std::string("\x01\xe1\xf5\x05\0\0\0\0", 8) + "{}", "header length",
                   "100000001 bytes is more than the format's cap of 100000000");
  CHECK_ST_REFUSED(std::string("\x40\0\0\0\0\0\0\0{}", 10), "header length",
                   "64 bytes of header, but only 2 bytes follow");
  CHECK_ST_REFUSED(st_file(""), "header", "must start with '{'");
  CHECK_ST_REFUSED(st_file(" {}"), "header", "must start with '{'");
}

TEST_CASE("read_safetensors reads the header against the format's schema", "[safetensors]") {
  const std::string a = entry("a", "F32", "[2]", 0, 8);
  CHECK_ST_REFUSED(st_file("{" + a, zeros(8)), "header", "not valid JSON");
  CHECK_ST_REFUSED(st_file("{" + a + "} x", zeros(8)), "header", "not valid JSON");
  CHECK_ST_REFUSED(st_file("{\"a\xff\":1}"), "header", "ill-formed UTF-8");
  CHECK_ST_REFUSED(st_file("{\"a\":[1]}"), "tensor", "the entry of tensor 'a' must be an object");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":7}}"), "dtype", "expected a string of tensor 'a', got the number 7");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 0, 8).insert(5, "\"x\":1,") + "}", zeros(8)), "tensor",
                   "the key 'x'; expected only dtype, shape and data_offsets");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"), "data_offsets",
                   "tensor 'a' has no 'data_offsets'");
  CHECK_ST_REFUSED(st_file("{\"__metadata__\":[]}"), "__metadata__", "expected an object of strings, got an array");
  CHECK_ST_REFUSED(st_file("{\"__metadata__\":{\"step\":3}}"), "__metadata__",
                   "the value of 'step' must be a string, got the number 3");
  CHECK_ST_REFUSED(st_file("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}"), "__metadata__", "got an object");
}

TEST_CASE("read_safetensors bounds the JSON nesting and refuses every duplicate key", "[safetensors]") {
  // Deeper than the schema's three levels: refused at the first bracket that goes too deep,
  // however deep the rest goes (nothing is built from it).
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[[[[[[[[[[2]]]]]]]]]]}}"), "shape", "got an array");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"shape\":{\"x\":1}}}"), "shape", "got an object");
  CHECK_ST_REFUSED(st_file("{\"a\":" + std::string(100000, '[')), "tensor",
                   "must be an object {dtype, shape, data_offsets}, got an array");
  // nlohmann-json's default keeps the last of two equal keys silently; an escape spells a key twice.
  const std::string a = entry("a", "F32", "[2]", 0, 8);
  CHECK_ST_REFUSED(st_file("{" + a + "," + entry("a", "F32", "[0]", 8, 8) + "}", zeros(8)), "name",
                   "the header names 'a' twice");
  CHECK_ST_REFUSED(st_file("{" + a + "," + entry("\\u0061", "F32", "[0]", 8, 8) + "}", zeros(8)), "name",
                   "names 'a' twice");
  CHECK_ST_REFUSED(st_file("{\"__metadata__\":{},\"__metadata__\":{}}"), "__metadata__", "names '__metadata__' twice");
  CHECK_ST_REFUSED(st_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "__metadata__",
                   "the key 'k' appears twice");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\"}}"), "dtype", "has the key 'dtype' twice");
}

TEST_CASE("read_safetensors refuses unknown dtypes and overflowing or wrapping shapes", "[safetensors]") {
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F8_E4M3", "[2]", 0, 2) + "}", zeros(2)), "dtype",
                   "expected BOOL, U8, I8, I16, I32, I64, F16, BF16, F32 or F64 of tensor 'a', got 'F8_E4M3'");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "f32", "[2]", 0, 8) + "}", zeros(8)), "dtype", "got 'f32'");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[-2]", 0, 8) + "}", zeros(8)), "shape[0]", "got -2");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2.0]", 0, 8) + "}", zeros(8)), "shape", "got the number '2.0'");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[18446744073709551615]", 0, 8) + "}", zeros(8)), "shape[0]",
                   "[0, 2^63 - 1]");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[99999999999999999999999]", 0, 8) + "}", zeros(8)), "shape",
                   "beyond 2^64 - 1");
  // 2^32 x 2^32 elements wrap to 0 in 64 bits: an empty tensor at [0, 0) if the product were trusted.
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[4294967296,4294967296]", 0, 0) + "}"), "shape[1]",
                   "more than 2^63 - 1 elements");
  // Zero extents do not hide an overflow of the others (LibTorch's strides would).
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[0,4294967296,4294967296]", 0, 0) + "}"), "shape[2]",
                   "more than 2^63 - 1 elements");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[4611686018427387904]", 0, 0) + "}"), "shape",
                   "needs more than 2^63 - 1 bytes");
  std::string dims = "[";
  for (int i = 0; i < 65; ++i) dims += i ? ",1" : "1";
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", dims + "]", 0, 4) + "}", zeros(4)), "shape",
                   "more than 64 dimensions");
}

TEST_CASE("read_safetensors refuses offsets that are out of bounds, not contiguous or not the shape's size",
          "[safetensors]") {
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 0, 16) + "}", zeros(8)), "data_offsets",
                   "bytes [0, 16) of tensor 'a' lie outside the data section of 8 bytes");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 9223372036854775800, 9223372036854775807) + "}", zeros(8)),
                   "data_offsets", "outside the data section");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 8, 0) + "}", zeros(8)), "data_offsets", "BEGIN 8 > END 0");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 0, 12) + "}", zeros(12)), "data_offsets",
                   "need 8 bytes, the offsets hold 12");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", zeros(8)), "data_offsets",
                   "expected [BEGIN, END] of tensor 'a', got 1 integer(s)");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", zeros(8)),
                   "data_offsets", "got more integers");
  CHECK_ST_REFUSED(st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", zeros(8)),
                   "data_offsets", "got -8");
  // A gap before the first tensor, a gap between two, an overlap, trailing bytes.
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 4, 12) + "}", zeros(12)), "data_offsets",
                   "4 bytes of the data section before tensor 'a' belong to no tensor");
  CHECK_ST_REFUSED(
      st_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}", zeros(12)),
      "data_offsets", "before tensor 'b'");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[1]", 4, 8) + "}", zeros(8)),
                   "data_offsets", "the bytes of tensor 'b' overlap those of tensor 'a'");
  CHECK_ST_REFUSED(st_file("{" + entry("a", "F32", "[2]", 0, 8) + "}", zeros(11)), "data",
                   "3 bytes after the end of the last tensor");
  CHECK_ST_REFUSED(st_file("{}", "x"), "data", "1 bytes after");
}

TEST_CASE("read_safetensors reads every dtype, 0-d and zero-size tensors and __metadata__ exactly", "[safetensors]") {
  std::map<std::string, torch::Tensor> tensors{
      {"f64", torch::tensor({0.5, -1e300}, torch::kFloat64)},
      {"f32", torch::tensor({1.f, -2.f, 3.5f, 4.f, 5.f, 6.f}).reshape({2, 3})},
      {"f16", torch::tensor({1.5, -0.25}).to(torch::kFloat16)},
      {"bf16", torch::tensor({2.0, -3.0, 0.5}).to(torch::kBFloat16)},
      {"i64", torch::tensor({7, -8, 9}, torch::kInt64)},
      {"i32", torch::tensor({-1, 2}, torch::kInt32)},
      {"i16", torch::tensor({-3}, torch::kInt16)},
      {"i8", torch::tensor({-4}, torch::kInt8)},
      {"u8", torch::tensor({250}, torch::kUInt8)},
      {"bool", torch::tensor({true, false})},
      {"scalar", torch::tensor(42.0)},
      {"empty", torch::zeros({2, 0, 3})},
      {"non_contiguous", torch::arange(6, torch::kFloat32).reshape({2, 3}).t()}};
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"step", "12"}, {"text", "é \"quoted\"\n"}};
  const auto bytes = io::safetensors_bytes(tensors, metadata);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(header_length % 8 == 0);  // padded: every tensor starts aligned to its element size
  const auto back = io::parse_safetensors(bytes, "round trip");
  REQUIRE(back.tensors.size() == tensors.size());
  for (const auto& kv : tensors) {
    INFO(kv.first);
    CHECK(back.at(kv.first).scalar_type() == kv.second.scalar_type());
    CHECK(torch::equal(back.at(kv.first), kv.second));
  }
  CHECK(back.config == metadata);
  // The reader takes any order of the header, padding spaces and no __metadata__ at all.
  const auto reordered = io::parse_safetensors(
      st_file("{" + entry("b", "I64", "[1]", 8, 16) + ",  " + entry("a", "I64", "[]", 0, 8) + "}   ",
              std::string("\x05\0\0\0\0\0\0\0\x06\0\0\0\0\0\0\0", 16)));
  CHECK(reordered.at("a").item<int64_t>() == 5);
  CHECK(reordered.at("b")[0].item<int64_t>() == 6);
  CHECK(reordered.config.empty());
}

TEST_CASE("Files written by the safetensors package (the fuzz seeds) read with their values", "[safetensors]") {
  const std::string dir = std::string(patchgcl_test::fixture_dir()) + "/../../fuzz/corpus/safetensors/";
  // safetensors 0.8.0's save_file, from Debian's torch 1.13 (tests/safetensors_python writes fresh ones).
  const auto f = io::read_safetensors(dir + "python_dtypes.safetensors");
  CHECK(f.tensors.size() == 7);
  CHECK(torch::equal(f.at("h"), torch::tensor({1.5, -2.0}).to(torch::kFloat16)));
  CHECK(torch::equal(f.at("b"), torch::tensor({0.5, 3.0}).to(torch::kBFloat16)));
  CHECK(torch::equal(f.at("i"), torch::tensor({int64_t{1} << 40, int64_t{-3}}, torch::kInt64)));
  CHECK(torch::equal(f.at("u"), torch::tensor({1, 255}, torch::kUInt8)));
  CHECK(torch::equal(f.at("m"), torch::tensor({true, false})));
  CHECK(f.at("s").dim() == 0);
  CHECK(f.at("s").item<float>() == 2.0f);
  CHECK(f.at("e").sizes().vec() == std::vector<int64_t>{0, 3});
  CHECK(f.config == std::map<std::string, std::string>{{"format", "pt"}, {"step", "3"}});
  const auto g = io::read_safetensors(dir + "python_f32_f64.safetensors");
  CHECK(torch::equal(g.at("weight"), torch::arange(6, torch::kFloat32).reshape({2, 3})));
  CHECK(torch::equal(g.at("bias"), torch::zeros({2}, torch::kFloat64)));
  const auto ints = io::read_safetensors(dir + "python_ints.safetensors");
  CHECK(torch::equal(ints.at("i32"), torch::tensor({1, 2}, torch::kInt32).reshape({1, 2})));
  CHECK(ints.config_string("k") == "\xc3\xa9");
  CHECK(io::read_safetensors(dir + "python_empty.safetensors").tensors.empty());
  CHECK(io::read_safetensors(dir + "patchgcl_pinned.safetensors").at("b").item<int64_t>() == 7);
}

TEST_CASE("write_safetensors writes the pinned bytes and refuses what the reader would refuse", "[safetensors]") {
  const std::string path = "safetensors_pinned.safetensors";
  io::write_safetensors(path, {{"a", torch::tensor({1.f, 2.f})}, {"b", torch::tensor(7, torch::kInt64)}}, {{"k", "v"}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  std::remove(path.c_str());
  // b (8-byte elements) before a; the header of 132 bytes padded with 4 spaces to 136 = 0x88.
  const std::string expected =
      std::string("\x88\0\0\0\0\0\0\0", 8) +
      "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}    " +
      std::string(
          "\x07\0\0\0\0\0\0\0"
          "\0\0\x80\x3f"
          "\0\0\0\x40",
          16);
  CHECK(bytes == expected);
  CHECK_THROWS_WITH(io::safetensors_bytes({{"__metadata__", torch::zeros({1})}}),
                    Catch::Contains("'__metadata__' cannot name a tensor"));
  CHECK_THROWS_WITH(io::safetensors_bytes({{"bad\xff", torch::zeros({1})}}),
                    Catch::Contains("the tensor name 'bad\\xff' is not valid UTF-8"));
  CHECK_THROWS_WITH(io::safetensors_bytes({{"c", torch::zeros({1}, torch::kComplexFloat)}}),
                    Catch::Contains("tensor 'c' has dtype ComplexFloat"));
}

TEST_CASE("load_parameters takes a safetensors or a .pgt file, told apart by content", "[safetensors]") {
  torch::manual_seed(0);
  torch::nn::Linear source(3, 2);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& p : source->named_parameters()) weights[p.key()] = p.value().detach().to(torch::kFloat64);
  // The same weights in both formats, under names that do not tell the format.
  StFile st(io::safetensors_bytes(weights), ".bin");
  const std::string pgt_path = "safetensors_test_weights.bin2";
  io::write_tensor_file(pgt_path, weights);
  for (const auto& path : {st.path, pgt_path}) {
    INFO(path);
    torch::nn::Linear target(3, 2);
    io::load_parameters(*target, path);
    CHECK(torch::equal(target->weight, source->weight));  // float32 -> float64 -> float32 is exact
    CHECK(torch::equal(target->bias, source->bias));
  }
  std::remove(pgt_path.c_str());
  // The checks of load_parameters apply: a wrong shape leaves the module as it was.
  torch::nn::Linear wrong(2, 2);
  CHECK_THROWS_WITH(io::load_parameters(*wrong, st.path), Catch::Contains("has shape"));
  StFile other("GIF89a....");
  try {
    io::read_weights(other.path);
    FAIL("a GIF was read as weights");
  } catch (const io::TensorFileError& e) {
    CHECK(e.field() == "format");
    CHECK_THAT(e.what(), Catch::Contains("neither a safetensors file") && Catch::Contains(other.path));
  }
  CHECK_THROWS_AS(io::read_weights("no/such/file.safetensors"), io::TensorFileError);
}

TEST_CASE("Files of the safetensors package read here, and ours read there (ctest safetensors_python)",
          "[.safetensors_python]") {
  // tests/safetensors_python/run.sh: cross_check.py wrote python.safetensors into this folder
  // and checks patchgcl.safetensors after this test.
  const char* dir = std::getenv("PATCHGCL_SAFETENSORS_DIR");
  REQUIRE(dir != nullptr);
  // cross_check.py's expected_tensors(), computed the same way: (k - 2) / 3 is correctly rounded
  // and the casts round alike in Python's torch and this one, so both give the same bits on any CPU.
  const auto values = (torch::arange(6, torch::kFloat64) - 2) / 3;
  std::map<std::string, torch::Tensor> expected{
      {"float32", values.to(torch::kFloat32).reshape({2, 3})},
      {"float64", values.reshape({2, 3})},
      {"float16", values.to(torch::kFloat16).reshape({2, 3})},
      {"bfloat16", values.to(torch::kBFloat16).reshape({2, 3})},
      {"int64", torch::arange(6, torch::kInt64).reshape({2, 3}) * -3 + (int64_t{1} << 40)},
      {"scalar", torch::tensor(0.25, torch::kFloat64)},
      {"empty", torch::zeros({2, 0}, torch::kFloat32)}};
  const auto metadata = [](const std::string& writer) {
    return std::map<std::string, std::string>{{"writer", writer}, {"step", "12"}, {"text", "\xc3\xa9 \"quoted\""}};
  };
  const auto python = io::read_safetensors(std::string(dir) + "/python.safetensors");
  CHECK(python.tensors.size() == expected.size());
  for (const auto& kv : expected) {
    INFO(kv.first);
    REQUIRE(python.contains(kv.first));
    CHECK(python.at(kv.first).scalar_type() == kv.second.scalar_type());
    CHECK(torch::equal(python.at(kv.first), kv.second));
  }
  CHECK(python.config == metadata("python"));
  io::write_safetensors(std::string(dir) + "/patchgcl.safetensors", expected, metadata("patchgcl"));

  // scripts/convert-reference-weights.py's output for graph_nce_small's weights under the
  // released GNNLoss's names: configured from its __metadata__, it loads strictly by name.
  const std::string converted = std::string(dir) + "/netF.safetensors";
  const auto meta = io::read_safetensors(converted);
  REQUIRE(meta.config_string("source") == "patchgcl");
  const auto f = patchgcl_test::load_fixture("graph_nce_small");
  patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions::reference(meta.config_ints("in_channels"))
                                  .nc(meta.config_int("nc"))
                                  .num_patches(f.config_int("num_patches"))
                                  .pooling_levels(meta.config_int("pooling_levels")));
  loss->to(torch::kFloat64);
  io::load_parameters(*loss, converted);
  for (const auto& param : loss->named_parameters()) {
    INFO(param.key());
    CHECK(torch::equal(param.value(), f.at("param." + param.key())));
  }
}
