// Tests of native/src/io: JSON, CRC-32, safetensors, npy and the trainer stream.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "io/binary.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "test_framework.h"

namespace fs = std::filesystem;
using sdt::io::Json;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sdt-test-io-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(crc32_matches_the_standard_check_value) {
  const char* s = "123456789";
  CHECK_EQ(sdt::io::crc32(s, 9), 0xCBF43926u);
  // Incremental use equals one pass.
  CHECK_EQ(sdt::io::crc32(s + 4, 5, sdt::io::crc32(s, 4)), 0xCBF43926u);
}

TEST(json_round_trips_values_and_reports_positions) {
  const std::string text = R"({"a": [1, 2.5, -3e-7, true, null], "b": {"c": "x\"\n\u00e9"}, "d": 1e-06})";
  const Json j = Json::parse(text);
  CHECK_EQ(j.get("a")->size(), size_t{5});
  CHECK_EQ(j.get("a")->at(1).as_number(), 2.5);
  CHECK_EQ(j.get("a")->at(2).as_number(), -3e-7);
  CHECK_EQ(j.get("b")->get("c")->as_string(), std::string("x\"\n\xc3\xa9"));
  const Json again = Json::parse(j.dump());
  CHECK_EQ(again.dump(), j.dump());
  CHECK_EQ(Json::parse(j.dump(2)).dump(), j.dump());
  CHECK_EQ(sdt::io::format_float(1e-6f), std::string("1e-06"));
  CHECK_EQ(sdt::io::format_double(0.1), std::string("0.1"));
  CHECK_EQ(sdt::io::format_double(42.0), std::string("42"));
  const std::string err = error_of([] { Json::parse("{\"a\": 1,\n  \"b\" 2}"); });
  CHECK(err.find("line 2") != std::string::npos);
  CHECK_THROWS(Json::parse("[1, 2"));
  CHECK_THROWS(Json::parse("{} x"));
  CHECK_THROWS(Json::parse("1.5").as_int());
}

TEST(safetensors_round_trip_and_aligned_header) {
  const std::string dir = temp_dir("st");
  const std::string path = dir + "/t.safetensors";
  std::vector<float> a = {1.0f, -2.5f, 3.25f, 4.0f, 5.0f, 6.0f};
  std::vector<float> b = {0.5f};
  sdt::io::write_safetensors(path, {{"layer.a", {2, 3}, a.data()}, {"b", {1}, b.data()}}, {{"format", "pt"}});
  const auto bytes = sdt::io::read_binary_file(path);
  const uint64_t n = sdt::io::get_u64(bytes.data());
  CHECK_EQ((8 + n) % 8, uint64_t{0});
  CHECK_EQ(bytes.size(), 8 + n + (a.size() + b.size()) * 4);
  const sdt::io::SafetensorsFile f(path);
  CHECK_EQ(f.names().size(), size_t{2});
  CHECK_EQ(f.metadata().at("format"), std::string("pt"));
  std::vector<float> back(6);
  f.read_f32("layer.a", {2, 3}, back.data());
  CHECK(back == a);
  CHECK_EQ(f.info("b").begin, uint64_t{24});
  CHECK(error_of([&] { f.read_f32("layer.a", {3, 2}, back.data()); }).find("shape [2, 3]") != std::string::npos);
  // A truncated file names itself.
  std::ofstream(dir + "/cut.safetensors", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 40);
  CHECK(error_of([&] { sdt::io::SafetensorsFile g(dir + "/cut.safetensors"); }).find("cut.safetensors") != std::string::npos);
  fs::remove_all(dir);
}

TEST(npy_round_trip_and_numpy_written_header) {
  const std::string dir = temp_dir("npy");
  std::vector<float> x = {1.5f, -2.0f, 0.0f, 7.0f, 8.0f, 9.0f};
  sdt::io::write_npy_f32(dir + "/x.npy", {2, 3}, x.data());
  const auto bytes = sdt::io::read_binary_file(dir + "/x.npy");
  CHECK_EQ((bytes.size() - 24) % 64, size_t{0});  // header padded to 64 as NumPy does
  const sdt::io::NpyArray a = sdt::io::read_npy(dir + "/x.npy");
  CHECK_EQ(a.descr, std::string("<f4"));
  CHECK(a.shape == (std::vector<int64_t>{2, 3}));
  CHECK(a.to_f32() == x);
  std::vector<int64_t> ids = {5, 6, 7};
  sdt::io::write_npy_i64(dir + "/i.npy", {3}, ids.data());
  CHECK(sdt::io::read_npy(dir + "/i.npy").to_i32() == (std::vector<int32_t>{5, 6, 7}));
  // A header exactly as numpy 1.x writes it for np.array([[1, 2]], dtype=np.int32).
  std::string h = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }";
  h.append(118 - h.size() - 1, ' ');
  h += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(h.size() & 0xFF);
  file += static_cast<char>(h.size() >> 8);
  file += h;
  const int32_t v[2] = {1, 2};
  file.append(reinterpret_cast<const char*>(v), 8);
  std::ofstream(dir + "/np.npy", std::ios::binary) << file;
  CHECK(sdt::io::read_npy(dir + "/np.npy").to_i32() == (std::vector<int32_t>{1, 2}));
  std::ofstream(dir + "/bad.npy", std::ios::binary) << "not numpy at all";
  CHECK(error_of([&] { sdt::io::read_npy(dir + "/bad.npy"); }).find("bad.npy") != std::string::npos);
  fs::remove_all(dir);
}

TEST(stream_round_trip_and_rejects_damage) {
  const std::string dir = temp_dir("stream");
  const std::string path = dir + "/s.bin";
  sdt::io::StreamBatch b;
  b.B = 2;
  b.T = 3;
  b.tag = "mask";
  b.input_ids = {1, 2, 3, 4, 5, 6};
  b.target_ids = {-1, 2, -1, 4, 5, -1};
  b.weights = {0.0f, 1.5f, 0.0f, 2.0f, 1.0f, 0.0f};
  sdt::io::StreamBatch e = b;
  e.tag = "val/python";
  e.segment_ids = {0, 0, 1, 0, 1, 1};
  {
    sdt::io::StreamHeader h;
    h.first_train_frame = 7;
    sdt::io::StreamWriter w(path, h);
    w.write_batch(sdt::io::FrameKind::Train, b);
    w.write_batch(sdt::io::FrameKind::Eval, e);
    w.write_control(sdt::io::FrameKind::Checkpoint);
    w.write_control(sdt::io::FrameKind::End);
    w.close();
  }
  {
    sdt::io::StreamReader r(path);
    CHECK_EQ(r.header().first_train_frame, uint64_t{7});
    sdt::io::StreamFrame f;
    CHECK(r.next(f));
    CHECK(f.kind == sdt::io::FrameKind::Train);
    CHECK_EQ(f.batch.tag, std::string("mask"));
    CHECK(f.batch.target_ids == b.target_ids);
    CHECK(f.batch.weights == b.weights);
    CHECK(f.batch.segment_ids.empty());
    CHECK(r.next(f));
    CHECK(f.kind == sdt::io::FrameKind::Eval);
    CHECK(f.batch.segment_ids == e.segment_ids);
    CHECK(r.next(f) && f.kind == sdt::io::FrameKind::Checkpoint);
    CHECK(r.next(f) && f.kind == sdt::io::FrameKind::End);
    CHECK(!r.next(f));
  }
  const auto bytes = sdt::io::read_binary_file(path);
  // Truncated inside the first frame.
  sdt::io::write_file_atomic(dir + "/cut.bin", bytes.data(), 50);
  const std::string cut = error_of([&] {
    sdt::io::StreamReader r(dir + "/cut.bin");
    sdt::io::StreamFrame f;
    while (r.next(f)) {
    }
  });
  CHECK(cut.find("cut.bin") != std::string::npos && cut.find("truncated") != std::string::npos);
  CHECK(cut.find("sdt train") != std::string::npos);
  // One flipped data bit is caught by the CRC.
  auto flipped = bytes;
  flipped[24 + 12 + 20] ^= 0x01;
  sdt::io::write_file_atomic(dir + "/flip.bin", flipped.data(), flipped.size());
  CHECK(error_of([&] {
          sdt::io::StreamReader r(dir + "/flip.bin");
          sdt::io::StreamFrame f;
          r.next(f);
        }).find("CRC") != std::string::npos);
  // A wrong magic or version is rejected before any frame.
  auto bad = bytes;
  bad[0] = 'X';
  sdt::io::write_file_atomic(dir + "/magic.bin", bad.data(), bad.size());
  CHECK(error_of([&] { sdt::io::StreamReader r(dir + "/magic.bin"); }).find("bad magic") != std::string::npos);
  bad = bytes;
  bad[8] = 9;
  sdt::io::write_file_atomic(dir + "/ver.bin", bad.data(), bad.size());
  CHECK(error_of([&] { sdt::io::StreamReader r(dir + "/ver.bin"); }).find("version 9") != std::string::npos);
  fs::remove_all(dir);
}
