#include "ledger/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace backout::ledger {
namespace {

// A log held in memory, read the way a database reads it: rows selected by their sequence column
// and ordered by it, whatever their order in `rows`.
class MemoryLog : public LogReader {
 public:
  std::vector<StoredEntry> rows;
  std::vector<Checkpoint> checkpoints;
  uint64_t largest_read = 0;

  core::Result<uint64_t> EntryCount() override { return rows.size(); }

  core::Result<std::vector<StoredEntry>> ReadEntries(uint64_t from, uint64_t count) override {
    largest_read = std::max(largest_read, count);
    std::vector<StoredEntry> selected;
    for (const StoredEntry& row : rows) {
      if (row.sequence >= from && row.sequence - from < count) selected.push_back(row);
    }
    std::stable_sort(
        selected.begin(), selected.end(),
        [](const StoredEntry& a, const StoredEntry& b) { return a.sequence < b.sequence; });
    return selected;
  }

  core::Result<std::vector<Checkpoint>> ReadCheckpoints() override { return checkpoints; }
};

std::shared_ptr<Signer> NewSigner() {
  auto signer = Signer::Generate();
  EXPECT_TRUE(signer.has_value());
  return *signer;
}

core::Time TimeOf(uint64_t sequence) {
  return core::ParseTime("2026-12-04T17:00:00Z").value() + std::chrono::seconds(sequence);
}

std::string EncodeAt(uint64_t sequence, const std::string& actor, const std::string& action,
                     const nlohmann::json& change) {
  Entry entry;
  entry.sequence = sequence;
  entry.time = TimeOf(sequence);
  entry.actor = actor;
  entry.action = action;
  entry.subject = "incident/INC-" + std::to_string(sequence);
  entry.change = change;
  auto encoded = EncodeEntry(entry);
  EXPECT_TRUE(encoded.has_value()) << encoded.error().message;
  return encoded.value_or("");
}

// Builds logs the way the store does: entries appended with their leaf hashes, and a checkpoint
// signed by the key in force after each batch.
class LogBuilder {
 public:
  explicit LogBuilder(std::shared_ptr<Signer> signer) : signer_(std::move(signer)) {
    Append("system", "ledger.key_introduced", KeyIntroducedChange(signer_->public_key()));
    Checkpoint();
  }

  void Append(const std::string& actor, const std::string& action, const nlohmann::json& change) {
    StoredEntry row;
    row.sequence = log_.rows.size();
    row.encoded = EncodeAt(row.sequence, actor, action, change);
    row.leaf_hash = LeafHash(row.encoded);
    log_.rows.push_back(row);
  }

  void AppendBatch(int count) {
    for (int i = 0; i < count; ++i) {
      Append("alice", "incident.updated", {{"step", log_.rows.size()}, {"note", "ok"}});
    }
    Checkpoint();
  }

  void Rotate(std::shared_ptr<Signer> new_signer) {
    Append("system", "ledger.key_rotated", KeyRotatedChange(*signer_, new_signer->public_key()));
    signer_ = std::move(new_signer);
  }

  void Checkpoint() { log_.checkpoints.push_back(SignCurrent(*signer_)); }

  ledger::Checkpoint SignCurrent(const Signer& signer) const {
    std::vector<Hash> leaves;
    for (const StoredEntry& row : log_.rows) leaves.push_back(row.leaf_hash);
    return signer.Sign(leaves.size(), RootOf(leaves), TimeOf(leaves.size()));
  }

  MemoryLog& log() { return log_; }
  const Signer& signer() const { return *signer_; }

 private:
  std::shared_ptr<Signer> signer_;
  MemoryLog log_;
};

// A standard log: the key entry, a checkpoint at size 1, then five batches of four entries,
// each followed by a checkpoint (sizes 5, 9, 13, 17, 21).
LogBuilder StandardLog(std::shared_ptr<Signer> signer) {
  LogBuilder builder(std::move(signer));
  for (int batch = 0; batch < 5; ++batch) builder.AppendBatch(4);
  return builder;
}

// What a careful attacker does after editing rows: renumbers every row from `from` on,
// re-encodes it with its new sequence, and recomputes its leaf hash.
void RewriteFrom(MemoryLog& log, uint64_t from) {
  for (uint64_t i = from; i < log.rows.size(); ++i) {
    auto entry = DecodeEntry(log.rows[i].encoded);
    ASSERT_TRUE(entry.has_value()) << entry.error().message;
    entry->sequence = i;
    log.rows[i].sequence = i;
    log.rows[i].encoded = EncodeEntry(*entry).value();
    log.rows[i].leaf_hash = LeafHash(log.rows[i].encoded);
  }
}

Hash RootOfRows(const MemoryLog& log, uint64_t size) {
  std::vector<Hash> leaves;
  for (uint64_t i = 0; i < size; ++i) leaves.push_back(log.rows[i].leaf_hash);
  return RootOf(leaves);
}

std::string ReplaceOnce(std::string text, std::string_view from, std::string_view to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Asserts that `result` is a corruption error whose message contains each of `parts`.
void ExpectCorruption(const core::Result<VerifyReport>& result,
                      const std::vector<std::string>& parts) {
  ASSERT_FALSE(result.has_value()) << "verification passed";
  EXPECT_EQ(result.error().code, core::ErrorCode::kCorruption) << result.error().message;
  for (const std::string& part : parts) {
    EXPECT_NE(result.error().message.find(part), std::string::npos)
        << "missing '" << part << "' in: " << result.error().message;
  }
}

TEST(VerifyLogTest, CleanLogPasses) {
  LogBuilder builder = StandardLog(NewSigner());
  auto report = VerifyLog(builder.log(), {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 21u);
  EXPECT_EQ(report->checkpoints, 6u);
  EXPECT_EQ(report->root, RootOfRows(builder.log(), 21));
  ASSERT_EQ(report->key_ids.size(), 1u);
  EXPECT_EQ(report->key_ids[0], builder.signer().public_key().key_id());
}

TEST(VerifyLogTest, CleanLogPassesWithBothOptions) {
  LogBuilder builder = StandardLog(NewSigner());
  VerifyOptions options;
  options.trusted_key = builder.signer().public_key();
  options.exported_checkpoint = builder.log().checkpoints[3];  // tree size 13
  builder.AppendBatch(3);
  auto report = VerifyLog(builder.log(), options);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 24u);
}

TEST(VerifyLogTest, EmptyLogPasses) {
  MemoryLog log;
  auto report = VerifyLog(log, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 0u);
  EXPECT_EQ(report->root, Sha256(""));
}

TEST(VerifyLogTest, EditedEntryBytesNamePositionAndDigests) {
  LogBuilder builder = StandardLog(NewSigner());
  StoredEntry& row = builder.log().rows[7];
  const std::string stored_leaf = ToHex(row.leaf_hash);
  row.encoded = ReplaceOnce(row.encoded, "\"alice\"", "\"mallory\"");
  const std::string actual_leaf = ToHex(LeafHash(row.encoded));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 7:", stored_leaf, actual_leaf});
}

TEST(VerifyLogTest, EditedLeafHashNamesPositionAndDigests) {
  LogBuilder builder = StandardLog(NewSigner());
  StoredEntry& row = builder.log().rows[7];
  const std::string true_leaf = ToHex(row.leaf_hash);
  row.leaf_hash = Sha256("forged");

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 7:", ToHex(Sha256("forged")), true_leaf});
}

TEST(VerifyLogTest, RehashedEditFailsCheckpointRoot) {
  LogBuilder builder = StandardLog(NewSigner());
  StoredEntry& row = builder.log().rows[7];
  row.encoded = ReplaceOnce(row.encoded, "\"alice\"", "\"mallory\"");
  row.leaf_hash = LeafHash(row.encoded);
  // Entry 7 lies between the checkpoints at sizes 5 and 9.
  const std::string signed_root = ToHex(builder.log().checkpoints[2].root);
  const std::string actual_root = ToHex(RootOfRows(builder.log(), 9));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entries 5 to 8", signed_root, actual_root});
}

TEST(VerifyLogTest, EditedChangeNamesBothChangeDigests) {
  LogBuilder builder = StandardLog(NewSigner());
  StoredEntry& row = builder.log().rows[7];
  const std::string recorded = ToHex(Sha256(R"({"note":"ok","step":7})"));
  const std::string actual = ToHex(Sha256(R"({"note":"ok","step":8})"));
  row.encoded = ReplaceOnce(row.encoded, "\"step\":7", "\"step\":8");
  row.leaf_hash = LeafHash(row.encoded);

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 7:", "change_digest", recorded, actual});
}

TEST(VerifyLogTest, DeletedRowNamesMissingEntry) {
  LogBuilder builder = StandardLog(NewSigner());
  builder.log().rows.erase(builder.log().rows.begin() + 7);

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 7:", "entry 7 is missing", "next stored row has sequence 8"});
}

TEST(VerifyLogTest, RenumberedDeletionNamesSequence) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  rows.erase(rows.begin() + 7);
  for (uint64_t i = 7; i < rows.size(); ++i) rows[i].sequence = i;

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 7:", "expected sequence 7, actual 8", ToHex(rows[7].leaf_hash)});
}

TEST(VerifyLogTest, DeletedAndRewrittenLogFailsCheckpointRoot) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  rows.erase(rows.begin() + 7);
  RewriteFrom(builder.log(), 7);
  const std::string signed_root = ToHex(builder.log().checkpoints[2].root);
  const std::string actual_root = ToHex(RootOfRows(builder.log(), 9));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entries 5 to 8", signed_root, actual_root});
}

TEST(VerifyLogTest, ReorderedRowsNamePositionAndSequences) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  std::swap(rows[7].encoded, rows[8].encoded);
  std::swap(rows[7].leaf_hash, rows[8].leaf_hash);

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 7:", "expected sequence 7, actual 8", ToHex(rows[7].leaf_hash)});
}

TEST(VerifyLogTest, ReorderedAndRewrittenLogFailsCheckpointRoot) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  std::swap(rows[7], rows[8]);
  RewriteFrom(builder.log(), 7);
  const std::string signed_root = ToHex(builder.log().checkpoints[2].root);
  const std::string actual_root = ToHex(RootOfRows(builder.log(), 9));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entries 5 to 8", signed_root, actual_root});
}

TEST(VerifyLogTest, InsertedRowWithRepeatedSequenceIsNamed) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  StoredEntry forged;
  forged.sequence = 7;
  forged.encoded = EncodeAt(7, "mallory", "incident.closed", {{"forged", true}});
  forged.leaf_hash = LeafHash(forged.encoded);
  rows.insert(rows.begin() + 7, forged);

  // The forged row is well formed at position 7; the displaced original is what fails.
  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 8:", "second stored row with sequence 7", ToHex(rows[8].leaf_hash)});
}

TEST(VerifyLogTest, InsertedAndRewrittenLogFailsCheckpointRoot) {
  LogBuilder builder = StandardLog(NewSigner());
  auto& rows = builder.log().rows;
  StoredEntry forged;
  forged.encoded = EncodeAt(7, "mallory", "incident.closed", {{"forged", true}});
  rows.insert(rows.begin() + 7, forged);
  RewriteFrom(builder.log(), 7);
  const std::string signed_root = ToHex(builder.log().checkpoints[2].root);
  const std::string actual_root = ToHex(RootOfRows(builder.log(), 9));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entries 5 to 8", signed_root, actual_root});
}

TEST(VerifyLogTest, ForgedCheckpointSignatureFails) {
  LogBuilder builder = StandardLog(NewSigner());
  Checkpoint& checkpoint = builder.log().checkpoints[3];  // tree size 13
  checkpoint.time += std::chrono::seconds(1);

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 12:", "checkpoint 3 at tree size 13", "does not verify",
                    builder.signer().public_key().key_id()});
}

TEST(VerifyLogTest, CheckpointByUnknownKeyNamesBothKeyIds) {
  LogBuilder builder = StandardLog(NewSigner());
  auto intruder = NewSigner();
  const Hash genuine_root = builder.log().checkpoints[3].root;  // tree size 13
  builder.log().checkpoints[3] = intruder->Sign(13, genuine_root, TimeOf(13));

  ExpectCorruption(
      VerifyLog(builder.log(), {}),
      {"entry 12:", builder.signer().public_key().key_id(), intruder->public_key().key_id()});
}

TEST(VerifyLogTest, CheckpointRootMismatchNamesBothRoots) {
  LogBuilder builder = StandardLog(NewSigner());
  // A correctly signed checkpoint whose root is not the log's.
  const Hash wrong_root = Sha256("not the root");
  builder.log().checkpoints[3] = builder.signer().Sign(13, wrong_root, TimeOf(13));

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entries 9 to 12", ToHex(wrong_root), ToHex(RootOfRows(builder.log(), 13))});
}

TEST(VerifyLogTest, ReplacedKeyCaughtOnlyByTrustedKey) {
  auto original = NewSigner();
  LogBuilder genuine = StandardLog(original);

  // The attacker rebuilds the whole log under their own key, with every checkpoint re-signed.
  LogBuilder replaced = StandardLog(NewSigner());
  EXPECT_TRUE(VerifyLog(replaced.log(), {}).has_value());

  VerifyOptions options;
  options.trusted_key = original->public_key();
  ExpectCorruption(VerifyLog(replaced.log(), options), {"entry 0:", original->public_key().key_id(),
                                                        replaced.signer().public_key().key_id()});
  EXPECT_TRUE(VerifyLog(genuine.log(), options).has_value());
}

TEST(VerifyLogTest, TruncationCaughtOnlyByExport) {
  LogBuilder builder = StandardLog(NewSigner());
  const Checkpoint exported = builder.log().checkpoints.back();  // tree size 21
  auto& log = builder.log();
  log.rows.resize(16);
  log.checkpoints.resize(4);  // the last kept checkpoint signs tree size 13
  EXPECT_TRUE(VerifyLog(log, {}).has_value());

  VerifyOptions options;
  options.exported_checkpoint = exported;
  ExpectCorruption(VerifyLog(log, options), {"entries 16 to 20", ToHex(exported.root),
                                             ToHex(RootOfRows(log, 16)), "tail was removed"});
}

TEST(VerifyLogTest, TruncationWithCheckpointsLeftFails) {
  LogBuilder builder = StandardLog(NewSigner());
  builder.log().rows.resize(16);
  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 16:", "checkpoint 4 signs tree size 17"});
}

TEST(VerifyLogTest, RewrittenLogFailsExportedCheckpoint) {
  LogBuilder builder = StandardLog(NewSigner());
  VerifyOptions options;
  options.exported_checkpoint = builder.log().checkpoints[4];  // tree size 17

  // Edit entry 14 and re-sign every checkpoint with the log's own key: only the exported checkpoint
  // detects it.
  auto& log = builder.log();
  log.rows[14].encoded = ReplaceOnce(log.rows[14].encoded, "\"alice\"", "\"mallory\"");
  log.rows[14].leaf_hash = LeafHash(log.rows[14].encoded);
  for (Checkpoint& checkpoint : log.checkpoints) {
    checkpoint = builder.signer().Sign(checkpoint.tree_size, RootOfRows(log, checkpoint.tree_size),
                                       checkpoint.time);
  }
  EXPECT_TRUE(VerifyLog(log, {}).has_value());
  ExpectCorruption(
      VerifyLog(log, options),
      {"entries 0 to 16", ToHex(options.exported_checkpoint->root), ToHex(RootOfRows(log, 17))});
}

TEST(VerifyLogTest, AlteredExportedCheckpointFails) {
  LogBuilder builder = StandardLog(NewSigner());
  VerifyOptions options;
  options.exported_checkpoint = builder.log().checkpoints[4];
  options.exported_checkpoint->tree_size = 13;
  ExpectCorruption(VerifyLog(builder.log(), options), {"exported checkpoint", "does not verify"});
}

TEST(VerifyLogTest, ExportedCheckpointByForeignKeyFails) {
  LogBuilder builder = StandardLog(NewSigner());
  auto foreign = NewSigner();
  VerifyOptions options;
  options.exported_checkpoint = foreign->Sign(13, RootOfRows(builder.log(), 13), TimeOf(13));
  ExpectCorruption(VerifyLog(builder.log(), options),
                   {"exported checkpoint", foreign->public_key().key_id()});
}

TEST(VerifyLogTest, RotatedKeySignsLaterCheckpoints) {
  auto first = NewSigner();
  auto second = NewSigner();
  LogBuilder builder = StandardLog(first);
  builder.Rotate(second);
  builder.AppendBatch(3);
  VerifyOptions options;
  options.trusted_key = first->public_key();
  options.exported_checkpoint = builder.log().checkpoints.back();

  auto report = VerifyLog(builder.log(), options);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->key_ids.size(), 2u);
  EXPECT_EQ(report->key_ids[0], first->public_key().key_id());
  EXPECT_EQ(report->key_ids[1], second->public_key().key_id());
}

TEST(VerifyLogTest, CheckpointByRetiredKeyFails) {
  auto first = NewSigner();
  auto second = NewSigner();
  LogBuilder builder = StandardLog(first);
  builder.Rotate(second);
  builder.AppendBatch(3);  // rotation at entry 21, checkpoint at size 25
  builder.log().checkpoints.back() = builder.SignCurrent(*first);

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 24:", "expected key id " + second->public_key().key_id(),
                    "actual " + first->public_key().key_id()});
}

TEST(VerifyLogTest, RotationNotSignedByKeyInForceFails) {
  auto first = NewSigner();
  auto intruder = NewSigner();
  auto second = NewSigner();
  LogBuilder builder = StandardLog(first);
  // The rotation names the right previous key but is signed by another one.
  nlohmann::json change = KeyRotatedChange(*intruder, second->public_key());
  change["previous_key_id"] = first->public_key().key_id();
  builder.Append("system", "ledger.key_rotated", change);

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 21:", "not signed by the key in force"});
}

TEST(VerifyLogTest, RotationNamingWrongPreviousKeyFails) {
  auto first = NewSigner();
  auto intruder = NewSigner();
  LogBuilder builder = StandardLog(first);
  builder.Append("system", "ledger.key_rotated",
                 KeyRotatedChange(*intruder, NewSigner()->public_key()));

  ExpectCorruption(VerifyLog(builder.log(), {}),
                   {"entry 21:", "expected key id " + first->public_key().key_id(),
                    intruder->public_key().key_id()});
}

TEST(VerifyLogTest, FirstEntryMustIntroduceKey) {
  MemoryLog log;
  StoredEntry row;
  row.encoded = EncodeAt(0, "alice", "incident.opened", nlohmann::json::object());
  row.leaf_hash = LeafHash(row.encoded);
  log.rows.push_back(row);

  ExpectCorruption(VerifyLog(log, {}), {"entry 0:", "ledger.key_introduced"});
}

TEST(VerifyLogTest, SecondKeyIntroductionFails) {
  LogBuilder builder = StandardLog(NewSigner());
  builder.Append("system", "ledger.key_introduced", KeyIntroducedChange(NewSigner()->public_key()));

  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 21:", "ledger.key_rotated"});
}

TEST(VerifyLogTest, KeyIdNotMatchingKeyFails) {
  auto signer = NewSigner();
  MemoryLog log;
  nlohmann::json change = KeyIntroducedChange(signer->public_key());
  change["key_id"] = std::string(64, 'f');
  StoredEntry row;
  row.encoded = EncodeAt(0, "system", "ledger.key_introduced", change);
  row.leaf_hash = LeafHash(row.encoded);
  log.rows.push_back(row);

  ExpectCorruption(VerifyLog(log, {}),
                   {"entry 0:", signer->public_key().key_id(), std::string(64, 'f')});
}

TEST(VerifyLogTest, DecreasingCheckpointSizesFail) {
  LogBuilder builder = StandardLog(NewSigner());
  std::swap(builder.log().checkpoints[2], builder.log().checkpoints[3]);
  ExpectCorruption(VerifyLog(builder.log(), {}), {"checkpoint 3 signs tree size 9"});
}

TEST(VerifyLogTest, LargeLogIsReadInChunks) {
  auto signer = NewSigner();
  LogBuilder builder(signer);
  for (int batch = 0; batch < 25; ++batch) builder.AppendBatch(1000);
  ASSERT_EQ(builder.log().rows.size(), 25'001u);
  auto report = VerifyLog(builder.log(), {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->checkpoints, 26u);
  EXPECT_LE(builder.log().largest_read, 10'000u);

  // A fault past the second chunk is still found at its position.
  StoredEntry& row = builder.log().rows[20'005];
  row.leaf_hash = Sha256("edited");
  ExpectCorruption(VerifyLog(builder.log(), {}), {"entry 20005:", ToHex(Sha256("edited"))});
}

}  // namespace
}  // namespace backout::ledger
