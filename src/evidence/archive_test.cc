#include "evidence/archive.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace backout::evidence {
namespace {

std::vector<ArchiveFile> SampleFiles() {
  return {{"manifest.json", "{\"a\":1}"}, {"ledger/entries.jsonl", "line\n"}, {"empty.md", ""}};
}

// The binary does not link libarchive; WriteTarGz and ReadTarGz load it with dlopen.
TEST(TarGz, LibarchiveLoads) {
  auto loaded = LoadLibarchive();
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  auto again = LoadLibarchive();
  EXPECT_TRUE(again.has_value());
}

TEST(TarGz, SameInputGivesSameBytes) {
  auto first = WriteTarGz(SampleFiles(), 1'790'000'000);
  auto second = WriteTarGz(SampleFiles(), 1'790'000'000);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*first, *second);
}

TEST(TarGz, GzipHeaderHasNoTimeOrName) {
  auto bytes = WriteTarGz(SampleFiles(), 1'790'000'000);
  ASSERT_TRUE(bytes.has_value());
  ASSERT_GT(bytes->size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[1]), 0x8b);
  // FLG: no FNAME (0x08) and no FCOMMENT (0x10).
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[3]) & 0x18, 0);
  // MTIME, bytes 4 to 7, is zero.
  for (int i = 4; i < 8; ++i) EXPECT_EQ((*bytes)[i], 0) << "byte " << i;
}

TEST(TarGz, RoundTripKeepsOrderAndContent) {
  const auto files = SampleFiles();
  auto bytes = WriteTarGz(files, 0);
  ASSERT_TRUE(bytes.has_value());
  auto read = ReadTarGz(*bytes);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_EQ(read->size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ((*read)[i].path, files[i].path);
    EXPECT_EQ((*read)[i].content, files[i].content);
  }
}

TEST(TarGz, MtimeChangesBytes) {
  auto first = WriteTarGz(SampleFiles(), 1);
  auto second = WriteTarGz(SampleFiles(), 2);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*first, *second);
}

TEST(TarGz, RejectsParentSegment) {
  auto bytes = WriteTarGz(std::vector<ArchiveFile>{{"a/../../etc/passwd", "x"}}, 0);
  ASSERT_TRUE(bytes.has_value());
  auto read = ReadTarGz(*bytes);
  ASSERT_FALSE(read.has_value());
  EXPECT_NE(read.error().message.find(".."), std::string::npos) << read.error().message;
}

TEST(TarGz, RejectsDuplicatePath) {
  auto bytes = WriteTarGz(std::vector<ArchiveFile>{{"a", "1"}, {"a", "2"}}, 0);
  ASSERT_TRUE(bytes.has_value());
  auto read = ReadTarGz(*bytes);
  ASSERT_FALSE(read.has_value());
  EXPECT_NE(read.error().message.find("twice"), std::string::npos) << read.error().message;
}

TEST(TarGz, SkipsFoldersOfRepackedArchive) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "in" / "ledger");
  std::ofstream(dir.path() / "in" / "ledger" / "entries.jsonl") << "line\n";
  const std::string archive = (dir.path() / "repacked.tar.gz").string();
  ASSERT_EQ(
      std::system(("tar -czf " + archive + " -C " + (dir.path() / "in").string() + " .").c_str()),
      0);
  std::ifstream in(archive, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto read = ReadTarGz(bytes);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].path, "ledger/entries.jsonl");
}

TEST(TarGz, RejectsNonArchive) {
  auto read = ReadTarGz("not a tar.gz at all");
  EXPECT_FALSE(read.has_value());
}

}  // namespace
}  // namespace backout::evidence
