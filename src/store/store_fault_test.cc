// Fault injection: a write that fails anywhere leaves state and ledger exactly as they were.

#include <stdexcept>

#include <gtest/gtest.h>

#include "ledger/verify.h"
#include "store/store_test_support.h"

namespace backout::store {
namespace {

class StoreFaultTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    WriteRecord(*store_, "record/0");
    auto digests = store_->TableDigests();
    ASSERT_TRUE(digests.has_value()) << digests.error().message;
    before_ = *digests;
  }

  // Changes every kind of state: an object, a counter, a job and the ledger.
  core::Result<void> ChangeEverything(Transaction& transaction) {
    Object object{.kind = "incident", .id = "INC-1"};
    object.body = {{"title", "must not survive"}};
    if (auto put = transaction.Put(object); !put) return put;
    if (auto number = transaction.NextNumber("records"); !number) {
      return std::unexpected(number.error());
    }
    if (auto job = transaction.EnqueueJob("rollback", "incident/INC-1", {}, clock_.Now()); !job) {
      return std::unexpected(job.error());
    }
    auto entry = transaction.AppendLedger(
        {.actor = "tester", .action = "incident.opened", .subject = "incident/INC-1"});
    if (!entry) return std::unexpected(entry.error());
    return {};
  }

  void ExpectNothingChanged() {
    auto after = store_->TableDigests();
    ASSERT_TRUE(after.has_value()) << after.error().message;
    for (const auto& [table, digest] : before_) {
      EXPECT_EQ(after->at(table), digest) << "table " << table << " changed";
    }
  }

  void ExpectStoreStillWorks() {
    WriteRecord(*store_, "record/after");
    auto report = ledger::VerifyLog(*store_, {});
    EXPECT_TRUE(report.has_value()) << report.error().message;
  }

  // A trigger that fails the checkpoint insert: the last statement of a write that appended,
  // after the ledger entries and the state change and just before COMMIT.
  void FailNextCheckpointInsert() {
    if (IsPostgres()) {
      ExecuteRaw(url_,
                 "CREATE FUNCTION fail_checkpoint() RETURNS trigger AS $$ BEGIN "
                 "RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; "
                 "CREATE TRIGGER fail_checkpoint BEFORE INSERT ON ledger_checkpoints "
                 "FOR EACH ROW EXECUTE FUNCTION fail_checkpoint();");
    } else {
      ExecuteRaw(url_,
                 "CREATE TRIGGER fail_checkpoint BEFORE INSERT ON ledger_checkpoints "
                 "BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
    }
  }

  void RemoveFault() { ExecuteRaw(url_, "DROP TRIGGER fail_checkpoint ON ledger_checkpoints"); }

  std::unique_ptr<Store> store_;
  std::map<std::string, std::string> before_;
};

TEST_P(StoreFaultTest, BodyErrorRollsBackEverything) {
  auto written = store_->Write([&](Transaction& transaction) -> core::Result<void> {
    if (auto changed = ChangeEverything(transaction); !changed) return changed;
    return core::MakeError(core::ErrorCode::kFailedPrecondition, "injected fault");
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().message, "injected fault");
  ExpectNothingChanged();
  ExpectStoreStillWorks();
}

TEST_P(StoreFaultTest, ExceptionRollsBackEverything) {
  EXPECT_THROW(store_->Write([&](Transaction& transaction) -> core::Result<void> {
    if (auto changed = ChangeEverything(transaction); !changed) return changed;
    throw std::runtime_error("injected fault");
  }),
               std::runtime_error);

  ExpectNothingChanged();
  ExpectStoreStillWorks();
}

TEST_P(StoreFaultTest, FaultBeforeCommitRollsBackEverything) {
  FailNextCheckpointInsert();

  auto written =
      store_->Write([&](Transaction& transaction) { return ChangeEverything(transaction); });

  ASSERT_FALSE(written.has_value());
  EXPECT_NE(written.error().message.find("injected fault"), std::string::npos)
      << written.error().message;
  ExpectNothingChanged();
  if (IsPostgres()) {
    RemoveFault();
  } else {
    ExecuteRaw(url_, "DROP TRIGGER fail_checkpoint");
  }
  ExpectStoreStillWorks();
}

TEST_P(StoreFaultTest, FailedAppendRollsBackEverything) {
  auto written = store_->Write([&](Transaction& transaction) -> core::Result<void> {
    if (auto changed = ChangeEverything(transaction); !changed) return changed;
    // Floating-point numbers have no canonical form in the ledger, so this append fails.
    auto entry = transaction.AppendLedger(
        {.actor = "tester", .action = "incident.updated", .change = {{"ratio", 0.5}}});
    if (!entry) return std::unexpected(entry.error());
    return {};
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kInvalidArgument);
  ExpectNothingChanged();
  ExpectStoreStillWorks();
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(StoreFaultTest);

// PostgreSQL checks deferred constraints at COMMIT itself, so a commit can fail after every
// statement succeeded. SQLite has no equivalent the store would use.
using PostgresCommitFaultTest = StoreFaultTest;

TEST_P(PostgresCommitFaultTest, CommitFailureRollsBackEverything) {
  ExecuteRaw(url_,
             "CREATE FUNCTION fail_commit() RETURNS trigger AS $$ BEGIN "
             "RAISE EXCEPTION 'injected commit fault'; END $$ LANGUAGE plpgsql; "
             "CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON objects "
             "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit();");

  auto written =
      store_->Write([&](Transaction& transaction) { return ChangeEverything(transaction); });

  ASSERT_FALSE(written.has_value());
  EXPECT_NE(written.error().message.find("injected commit fault"), std::string::npos)
      << written.error().message;
  ExpectNothingChanged();
  ExecuteRaw(url_, "DROP TRIGGER fail_commit ON objects");
  ExpectStoreStillWorks();
}

INSTANTIATE_TEST_SUITE_P(Postgres, PostgresCommitFaultTest, ::testing::Values(Backend::kPostgres),
                         BackendName);

}  // namespace
}  // namespace backout::store
