// Tamper suite: someone with write access to the database edits the ledger tables directly, and
// ledger::VerifyLog, reading through the store, names the first bad position.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/verify.h"
#include "store/store_test_support.h"

namespace backout::store {
namespace {

using ::testing::HasSubstr;

constexpr int kRecords = 10;  // entries 1..10 after the key introduction at 0

std::string Quote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    quoted += c;
    if (c == '\'') quoted += '\'';
  }
  return quoted + "'";
}

class StoreTamperTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    for (int i = 0; i < kRecords; ++i) {
      WriteRecord(*store_, "record/" + std::to_string(i));
      clock_.Advance(std::chrono::seconds(1));
    }
    auto report = ledger::VerifyLog(*store_, {});
    ASSERT_TRUE(report.has_value()) << "the untouched log must verify: " << report.error().message;
  }

  // Runs VerifyLog and returns its error message; fails the test when verification passes.
  std::string VerifyFailure(const ledger::VerifyOptions& options = {}) {
    auto report = ledger::VerifyLog(*store_, options);
    if (report.has_value()) {
      ADD_FAILURE() << "verification passed on a tampered log";
      return "";
    }
    EXPECT_EQ(report.error().code, core::ErrorCode::kCorruption);
    return report.error().message;
  }

  std::vector<ledger::StoredEntry> Entries() {
    auto entries = store_->ReadEntries(0, 1000);
    EXPECT_TRUE(entries.has_value()) << entries.error().message;
    return entries.value_or(std::vector<ledger::StoredEntry>{});
  }

  // Replaces the whole entries table with `entries`, as an attacker rewriting history would.
  void RewriteEntries(const std::vector<ledger::Entry>& entries) {
    std::string sql = "DELETE FROM ledger_entries;";
    for (const ledger::Entry& entry : entries) {
      auto encoded = ledger::EncodeEntry(entry);
      ASSERT_TRUE(encoded.has_value()) << encoded.error().message;
      sql += fmt::format(
          "INSERT INTO ledger_entries (sequence, encoded, leaf_hash) VALUES ({}, {}, '{}');",
          entry.sequence, Quote(*encoded), ledger::ToHex(ledger::LeafHash(*encoded)));
    }
    ExecuteRaw(url_, sql);
  }

  // Rewrites ledger_state as a writer would have saved it after the first `size` entries, which
  // leaves the entries after it for the next writer to fold in.
  void SaveStateAt(uint64_t size) {
    std::vector<ledger::StoredEntry> entries = Entries();
    ASSERT_LE(size, entries.size());
    ledger::CompactTree tree;
    for (uint64_t i = 0; i < size; ++i) tree.Append(entries[i].leaf_hash);
    std::string hex;
    for (unsigned char byte : tree.Serialize()) hex += fmt::format("{:02x}", byte);
    ExecuteRaw(url_, fmt::format("UPDATE ledger_state SET tree_size = {}, compact_tree = '{}'",
                                 size, hex));
  }

  // Appends one entry through a newly opened store, which has to read ledger_state.
  core::Result<void> AppendAfterRestart() {
    store_ = OpenStore();
    if (store_ == nullptr) return core::MakeError(core::ErrorCode::kInternal, "store not opened");
    return store_->Write([](Transaction& transaction) -> core::Result<void> {
      auto entry = transaction.AppendLedger({.actor = "tester", .action = "record.written"});
      if (!entry) return std::unexpected(entry.error());
      return {};
    });
  }

  std::unique_ptr<Store> store_;
};

TEST_P(StoreTamperTest, EditedEntryIsCaught) {
  ExecuteRaw(url_,
             "UPDATE ledger_entries SET encoded = replace(encoded, 'record/5', 'record/X') "
             "WHERE sequence = 6");

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 6"));
}

TEST_P(StoreTamperTest, EditedEntryWithRecomputedLeafHashIsCaught) {
  std::vector<ledger::StoredEntry> entries = Entries();
  ASSERT_GT(entries.size(), 6u);
  std::string edited = entries[6].encoded;
  const size_t at = edited.find("record/5");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, 8, "record/X");
  ExecuteRaw(url_, fmt::format("UPDATE ledger_entries SET encoded = {}, leaf_hash = '{}' "
                               "WHERE sequence = 6",
                               Quote(edited), ledger::ToHex(ledger::LeafHash(edited))));

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 6"));
}

TEST_P(StoreTamperTest, DeletedEntryIsCaught) {
  ExecuteRaw(url_, "DELETE FROM ledger_entries WHERE sequence = 4");

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 4"));
}

TEST_P(StoreTamperTest, SwappedEntriesAreCaught) {
  std::vector<ledger::StoredEntry> entries = Entries();
  ASSERT_GT(entries.size(), 7u);
  std::string sql;
  for (auto [to, from] : {std::pair{3, 7}, {7, 3}}) {
    sql += fmt::format(
        "UPDATE ledger_entries SET encoded = {}, leaf_hash = '{}' WHERE sequence "
        "= {};",
        Quote(entries[from].encoded), ledger::ToHex(entries[from].leaf_hash), to);
  }
  ExecuteRaw(url_, sql);

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 3"));
}

TEST_P(StoreTamperTest, InsertedEntryIsCaught) {
  // A careful forger renumbers every later entry so that each row is well-formed on its own;
  // only the signed checkpoints still tell.
  std::vector<ledger::Entry> rewritten;
  for (const ledger::StoredEntry& stored : Entries()) {
    auto entry = ledger::DecodeEntry(stored.encoded);
    ASSERT_TRUE(entry.has_value()) << entry.error().message;
    if (entry->sequence == 5) {
      ledger::Entry forged = *entry;
      forged.action = "record.deleted";
      forged.subject = "record/forged";
      rewritten.push_back(forged);
    }
    if (entry->sequence >= 5) ++entry->sequence;
    rewritten.push_back(*entry);
  }
  RewriteEntries(rewritten);

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 5"));
}

TEST_P(StoreTamperTest, ForgedCheckpointSignatureIsCaught) {
  // The forger signs a different root for tree size 6 with their own key, under the real key id.
  auto forger = ledger::Signer::Generate();
  ASSERT_TRUE(forger.has_value());
  ledger::Checkpoint forged = (*forger)->Sign(6, ledger::Sha256("forged"), clock_.Now());
  ExecuteRaw(url_, fmt::format("UPDATE ledger_checkpoints SET root = '{}', signature = '{}' "
                               "WHERE tree_size = 6",
                               ledger::ToHex(forged.root), forged.signature));

  const std::string failure = VerifyFailure();

  EXPECT_THAT(failure, HasSubstr("entry 5"));
  EXPECT_THAT(failure, HasSubstr("signature"));
}

TEST_P(StoreTamperTest, ReplacedKeyIsCaughtWithTrustedKey) {
  // The forger wipes the ledger and writes a new history signed with a key of their own.
  const ledger::PublicKey trusted = signer_->public_key();
  ExecuteRaw(url_,
             "DELETE FROM ledger_entries; DELETE FROM ledger_checkpoints; "
             "DELETE FROM ledger_keys; DELETE FROM ledger_state; DELETE FROM objects;");
  auto forger = ledger::Signer::Generate();
  ASSERT_TRUE(forger.has_value());
  signer_ = *forger;
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  for (int i = 0; i < kRecords; ++i) WriteRecord(*store_, "record/" + std::to_string(i));

  auto self_consistent = ledger::VerifyLog(*store_, {});
  EXPECT_TRUE(self_consistent.has_value())
      << "without a trusted key the re-signed log is self-consistent: "
      << self_consistent.error().message;
  const std::string failure = VerifyFailure({.trusted_key = trusted});
  EXPECT_THAT(failure, HasSubstr("entry 0"));
  EXPECT_THAT(failure, HasSubstr(trusted.key_id()));
}

TEST_P(StoreTamperTest, TruncatedTailIsCaughtWithExportedCheckpoint) {
  auto exported = store_->LatestCheckpoint();
  ASSERT_TRUE(exported.has_value()) << exported.error().message;
  ASSERT_TRUE(exported->has_value());
  ASSERT_EQ((*exported)->tree_size, static_cast<uint64_t>(kRecords + 1));
  ExecuteRaw(url_,
             "DELETE FROM ledger_entries WHERE sequence >= 8; "
             "DELETE FROM ledger_checkpoints WHERE tree_size > 8;");

  auto self_consistent = ledger::VerifyLog(*store_, {});
  EXPECT_TRUE(self_consistent.has_value())
      << "without the exported checkpoint the shortened log is self-consistent: "
      << self_consistent.error().message;
  EXPECT_THAT(VerifyFailure({.exported_checkpoint = **exported}), HasSubstr("entries 8 to 10"));
}

TEST_P(StoreTamperTest, AppendRefusesTruncatedLog) {
  ExecuteRaw(url_, "DELETE FROM ledger_entries WHERE sequence = 10");

  auto written = store_->Write([](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger({.actor = "tester", .action = "record.written"});
    if (!entry) return std::unexpected(entry.error());
    return {};
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kCorruption);
  EXPECT_THAT(written.error().message, HasSubstr("11 entries"));
}

TEST_P(StoreTamperTest, RestartRefusesStateAheadOfEntries) {
  ExecuteRaw(url_, "DELETE FROM ledger_entries WHERE sequence = 10");

  auto written = AppendAfterRestart();

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kCorruption);
  EXPECT_THAT(written.error().message, HasSubstr("records 11 entries"));
  EXPECT_THAT(written.error().message, HasSubstr("end at 10 entries"));
}

TEST_P(StoreTamperTest, RestartRefusesGapAfterSavedState) {
  SaveStateAt(7);
  ExecuteRaw(url_, "DELETE FROM ledger_entries WHERE sequence = 8");

  auto written = AppendAfterRestart();

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kCorruption);
  EXPECT_THAT(written.error().message, HasSubstr("entry 8 is missing"));
  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 8"));
}

TEST_P(StoreTamperTest, RestartRefusesStateWithoutRow) {
  ExecuteRaw(url_, "DELETE FROM ledger_state");

  auto written = AppendAfterRestart();

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kCorruption);
  EXPECT_THAT(written.error().message, HasSubstr("ledger state is missing"));
}

// A leaf hash edited after the saved state is folded into the next checkpoint's root, and the
// verifier still names the entry, because it recomputes each leaf hash from the entry's bytes.
TEST_P(StoreTamperTest, EditedLeafAfterSavedStateIsCaught) {
  SaveStateAt(7);
  ExecuteRaw(url_, fmt::format("UPDATE ledger_entries SET leaf_hash = '{}' WHERE sequence = 9",
                               ledger::ToHex(ledger::Sha256("forged leaf"))));

  auto written = AppendAfterRestart();
  ASSERT_TRUE(written.has_value()) << written.error().message;

  EXPECT_THAT(VerifyFailure(), HasSubstr("entry 9"));
}

TEST_P(StoreTamperTest, RestartFoldsEntriesAfterSavedState) {
  SaveStateAt(4);

  auto written = AppendAfterRestart();

  ASSERT_TRUE(written.has_value()) << written.error().message;
  auto report = ledger::VerifyLog(*store_, {});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, static_cast<uint64_t>(kRecords + 2));
  EXPECT_EQ(QueryRaw(url_, "SELECT tree_size FROM ledger_state"), std::to_string(kRecords + 2));
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(StoreTamperTest);

}  // namespace
}  // namespace backout::store
