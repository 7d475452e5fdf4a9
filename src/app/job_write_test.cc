// WriteForJob against a real SQLite and a real PostgreSQL store: conflicts and concurrent inserts
// are retried, a lost lease and other errors are not.
#include "app/job_write.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "ledger/checkpoint.h"
#include "support/postgres_server.h"
#include "support/temp_dir.h"

namespace backout::app {
namespace {

using namespace std::chrono_literals;

class JobWriteTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url = fmt::format("sqlite:{}/backout.db", temp_.path().string());
    if (GetParam() == "Postgres") {
      auto server = testing::PostgresServer::Shared();
      ASSERT_TRUE(server.has_value()) << server.error();
      auto database = (*server)->CreateDatabase();
      ASSERT_TRUE(database.has_value()) << database.error();
      url = *database;
    }
    auto signer = ledger::Signer::Generate();
    ASSERT_TRUE(signer.has_value());
    auto store = store::OpenStore(url, store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);

    // A note at version 1 and a leased job to write on behalf of.
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      store::Object note{.kind = "note", .id = "n1", .body = {{"text", "first"}}};
      if (auto put = tx.Put(note); !put) return put;
      auto job = tx.EnqueueJob("test", "note/n1", {}, clock_.Now());
      if (!job) return std::unexpected(job.error());
      return {};
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
    auto lease = store_->LeaseJob("worker-a", {"test"}, 30s);
    ASSERT_TRUE(lease.has_value()) << lease.error().message;
    ASSERT_TRUE(lease->has_value());
    lease_ = **lease;
  }

  store::Object ReadNote() {
    store::Object note;
    auto read = store_->Read([&](store::Transaction& tx) -> core::Result<void> {
      auto object = tx.Get("note", "n1");
      if (!object) return std::unexpected(object.error());
      if (*object) note = **object;
      return {};
    });
    EXPECT_TRUE(read.has_value()) << read.error().message;
    return note;
  }

  // Sets the note's text in a write of its own, as a concurrent writer would.
  void ChangeNoteElsewhere(const std::string& text) {
    auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto object = tx.Get("note", "n1");
      if (!object) return std::unexpected(object.error());
      (*object)->body["text"] = text;
      return tx.Put(**object);
    });
    ASSERT_TRUE(written.has_value()) << written.error().message;
  }

  testing::TempDir temp_;
  core::ManualClock clock_{core::Time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 5))};
  std::unique_ptr<store::Store> store_;
  store::JobLease lease_;
};

TEST_P(JobWriteTest, StaleVersionIsRetried) {
  const store::Object stale = ReadNote();
  ASSERT_NO_FATAL_FAILURE(ChangeNoteElsewhere("second"));

  // The first attempt writes the copy read before the other writer committed, as a job that read
  // outside its transaction would. The retry reads the note again.
  int calls = 0;
  auto written = WriteForJob(*store_, lease_, "appending to note n1",
                             [&](store::Transaction& tx) -> core::Result<void> {
                               ++calls;
                               store::Object note = stale;
                               if (calls > 1) {
                                 auto fresh = tx.Get("note", "n1");
                                 if (!fresh) return std::unexpected(fresh.error());
                                 note = **fresh;
                               }
                               note.body["text"] = note.body["text"].get<std::string>() + "+job";
                               return tx.Put(note);
                             });

  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(calls, 2);
  const store::Object note = ReadNote();
  EXPECT_EQ(note.version, 3);
  EXPECT_EQ(note.body["text"], "second+job");
}

TEST_P(JobWriteTest, ConcurrentInsertIsRetried) {
  // The first attempt inserts the note, as a job would that found none before another writer
  // created it. The retry reads the note and replaces it.
  int calls = 0;
  auto written = WriteForJob(*store_, lease_, "creating note n1",
                             [&](store::Transaction& tx) -> core::Result<void> {
                               ++calls;
                               store::Object note{.kind = "note", .id = "n1"};
                               if (calls > 1) {
                                 auto found = tx.GetForUpdate("note", "n1");
                                 if (!found) return std::unexpected(found.error());
                                 note = **found;
                               }
                               note.body["text"] = "from the job";
                               return tx.Put(note);
                             });

  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ReadNote().body["text"], "from the job");
}

TEST_P(JobWriteTest, RetriesStopAtLimit) {
  const store::Object stale = ReadNote();
  ASSERT_NO_FATAL_FAILURE(ChangeNoteElsewhere("second"));

  int calls = 0;
  auto written = WriteForJob(*store_, lease_, "appending to note n1",
                             [&](store::Transaction& tx) -> core::Result<void> {
                               ++calls;
                               store::Object note = stale;
                               return tx.Put(note);
                             });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kConflict);
  EXPECT_EQ(calls, kJobWriteAttempts);
  EXPECT_NE(written.error().message.find("appending to note n1: gave up after 10 writes"),
            std::string::npos)
      << written.error().message;
  EXPECT_NE(written.error().message.find("another writer changed it"), std::string::npos)
      << written.error().message;
  EXPECT_EQ(ReadNote().body["text"], "second");
}

TEST_P(JobWriteTest, LostLeaseIsNotRetried) {
  clock_.Advance(31s);
  auto taken = store_->LeaseJob("worker-b", {"test"}, 30s);
  ASSERT_TRUE(taken.has_value()) << taken.error().message;
  ASSERT_TRUE(taken->has_value());

  int calls = 0;
  auto written = WriteForJob(*store_, lease_, "appending to note n1",
                             [&](store::Transaction&) -> core::Result<void> {
                               ++calls;
                               return {};
                             });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kConflict);
  EXPECT_NE(written.error().message.find("is no longer held"), std::string::npos)
      << written.error().message;
  EXPECT_EQ(calls, 0);
}

TEST_P(JobWriteTest, OtherErrorIsNotRetried) {
  int calls = 0;
  auto written = WriteForJob(*store_, lease_, "appending to note n1",
                             [&](store::Transaction&) -> core::Result<void> {
                               ++calls;
                               return core::MakeError(core::ErrorCode::kUnavailable, "tool down");
                             });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, JobWriteTest, ::testing::Values("Sqlite", "Postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace backout::app
