// The Store contract, run against SQLite and PostgreSQL alike.

#include <atomic>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ledger/merkle.h"
#include "ledger/verify.h"
#include "store/ledger_appender.h"
#include "store/store_test_support.h"

namespace backout::store {
namespace {

using ::testing::HasSubstr;

using StoreContractTest = StoreTest;

core::Result<void> PutObject(Store& store, Object& object) {
  return store.Write([&](Transaction& transaction) { return transaction.Put(object); });
}

std::optional<Object> GetObject(Store& store, std::string_view kind, std::string_view id) {
  std::optional<Object> found;
  auto read = store.Read([&](Transaction& transaction) -> core::Result<void> {
    auto object = transaction.Get(kind, id);
    if (!object) return std::unexpected(object.error());
    found = std::move(*object);
    return {};
  });
  EXPECT_TRUE(read.has_value()) << read.error().message;
  return found;
}

std::vector<std::string> ListIds(Store& store, const ListQuery& query) {
  std::vector<std::string> ids;
  auto read = store.Read([&](Transaction& transaction) -> core::Result<void> {
    auto objects = transaction.List(query);
    if (!objects) return std::unexpected(objects.error());
    for (const Object& object : *objects) ids.push_back(object.id);
    return {};
  });
  EXPECT_TRUE(read.has_value()) << read.error().message;
  return ids;
}

core::Result<ledger::VerifyReport> Verify(Store& store) {
  return ledger::VerifyLog(store, ledger::VerifyOptions{});
}

// The tree size that ledger_state records, as text; "" when the row is missing.
std::string SavedTreeSize(const std::string& url) {
  return QueryRaw(url, "SELECT tree_size FROM ledger_state WHERE id = 1");
}

// Appends `count` entries in one write transaction.
void AppendMany(Store& store, int count) {
  auto written = store.Write([&](Transaction& transaction) -> core::Result<void> {
    for (int i = 0; i < count; ++i) {
      auto entry = transaction.AppendLedger(
          {.actor = "tester", .action = "record.written", .subject = fmt::format("bulk/{}", i)});
      if (!entry) return std::unexpected(entry.error());
    }
    return {};
  });
  ASSERT_TRUE(written.has_value()) << written.error().message;
}

// Objects.

TEST_P(StoreContractTest, GetForUpdateReadsLikeGet) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object object{.kind = "incident", .id = "INC-1", .body = {{"title", "first"}}};
  ASSERT_TRUE(PutObject(*store, object).has_value());

  // In a write transaction, where PostgreSQL locks the row, and in a read transaction, where it
  // must not try to.
  std::optional<Object> written_read;
  std::optional<Object> missing;
  auto written = store->Write([&](Transaction& transaction) -> core::Result<void> {
    auto found = transaction.GetForUpdate("incident", "INC-1");
    if (!found) return std::unexpected(found.error());
    written_read = *found;
    auto absent = transaction.GetForUpdate("incident", "INC-2");
    if (!absent) return std::unexpected(absent.error());
    missing = *absent;
    written_read->body["title"] = "second";
    return transaction.Put(*written_read);
  });
  ASSERT_TRUE(written.has_value()) << written.error().message;
  ASSERT_TRUE(written_read.has_value());
  EXPECT_EQ(written_read->version, 2);
  EXPECT_FALSE(missing.has_value());

  std::optional<Object> read;
  auto read_only = store->Read([&](Transaction& transaction) -> core::Result<void> {
    auto found = transaction.GetForUpdate("incident", "INC-1");
    if (!found) return std::unexpected(found.error());
    read = *found;
    return {};
  });
  ASSERT_TRUE(read_only.has_value()) << read_only.error().message;
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->body["title"], "second");
  EXPECT_EQ(read->version, 2);
  EXPECT_EQ(read->body, GetObject(*store, "incident", "INC-1")->body);
}

TEST_P(StoreContractTest, PutCreatesVersionOne) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object object{.kind = "incident", .id = "INC-1", .service = "checkout"};
  object.body = {{"title", "checkout errors"}, {"severity", 2}};

  auto put = PutObject(*store, object);

  ASSERT_TRUE(put.has_value()) << put.error().message;
  EXPECT_EQ(object.version, 1);
  EXPECT_EQ(object.created_at, clock_.Now());
  auto stored = GetObject(*store, "incident", "INC-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->service, "checkout");
  EXPECT_EQ(stored->body, object.body);
  EXPECT_EQ(stored->version, 1);
  EXPECT_EQ(stored->created_at, clock_.Now());
  EXPECT_EQ(stored->updated_at, clock_.Now());
}

TEST_P(StoreContractTest, PutReplacesWithCurrentVersion) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object object{.kind = "incident", .id = "INC-1"};
  ASSERT_TRUE(PutObject(*store, object).has_value());
  const core::Time created = clock_.Now();
  clock_.Advance(std::chrono::seconds(5));

  object.body = {{"state", "assessing"}};
  auto put = PutObject(*store, object);

  ASSERT_TRUE(put.has_value()) << put.error().message;
  EXPECT_EQ(object.version, 2);
  auto stored = GetObject(*store, "incident", "INC-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->version, 2);
  EXPECT_EQ(stored->body["state"], "assessing");
  EXPECT_EQ(stored->created_at, created);
  EXPECT_EQ(stored->updated_at, clock_.Now());
}

TEST_P(StoreContractTest, PutWithStaleVersionConflicts) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object first{.kind = "incident", .id = "INC-1"};
  ASSERT_TRUE(PutObject(*store, first).has_value());
  Object second = first;
  ASSERT_TRUE(PutObject(*store, first).has_value());  // now at version 2

  auto put = PutObject(*store, second);  // still at version 1

  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, core::ErrorCode::kConflict);
  EXPECT_THAT(put.error().message, HasSubstr("version 2"));
}

TEST_P(StoreContractTest, PutNewOverExistingFails) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object first{.kind = "incident", .id = "INC-1"};
  ASSERT_TRUE(PutObject(*store, first).has_value());
  Object duplicate{.kind = "incident", .id = "INC-1"};

  auto put = PutObject(*store, duplicate);

  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, core::ErrorCode::kAlreadyExists);
}

TEST_P(StoreContractTest, PutMissingWithVersionIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object object{.kind = "incident", .id = "INC-9", .version = 3};

  auto put = PutObject(*store, object);

  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, core::ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, PutSerializedStoresPutBytes) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // ASCII, escapes, non-ASCII text, a float, nesting and an empty object, so that both of
  // DumpJson's paths are covered.
  const nlohmann::json body = {{"title", "checkout \"errors\"\n"},
                               {"owner", "Zoë Müller ☃"},
                               {"score", 0.1},
                               {"count", -7},
                               {"labels", {{"b", "2"}, {"a", "1"}}},
                               {"list", {1, nullptr, true, "x"}},
                               {"empty", nlohmann::json::object()}};
  Object by_put{.kind = "signal", .id = "put", .service = "checkout", .body = body};
  ASSERT_TRUE(PutObject(*store, by_put).has_value());

  auto serialized = SerializeBody(body, "body of signal/serialized");
  ASSERT_TRUE(serialized.has_value()) << serialized.error().message;
  Object by_text{.kind = "signal", .id = "serialized", .service = "checkout", .body = nullptr};
  auto put = store->Write(
      [&](Transaction& transaction) { return transaction.PutSerialized(by_text, *serialized); });
  ASSERT_TRUE(put.has_value()) << put.error().message;
  EXPECT_EQ(by_text.version, 1);
  EXPECT_EQ(by_text.created_at, clock_.Now());
  EXPECT_TRUE(by_text.body.is_null());

  const std::string put_bytes = QueryRaw(url_, "SELECT body FROM objects WHERE id = 'put'");
  const std::string serialized_bytes =
      QueryRaw(url_, "SELECT body FROM objects WHERE id = 'serialized'");
  EXPECT_FALSE(put_bytes.empty());
  EXPECT_EQ(serialized_bytes, put_bytes);
  EXPECT_EQ(serialized->text(), put_bytes);

  auto read = GetObject(*store, "signal", "serialized");
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->body, body);
  EXPECT_EQ(read->service, "checkout");
}

TEST_P(StoreContractTest, PutSerializedReplacesAndChecksVersion) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto first = SerializeBody({{"status", "firing"}}, "first body");
  auto second = SerializeBody({{"status", "resolved"}}, "second body");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  auto put_text = [&](Object& object, const SerializedBody& body) {
    return store->Write(
        [&](Transaction& transaction) { return transaction.PutSerialized(object, body); });
  };

  Object object{.kind = "signal", .id = "am:1"};
  ASSERT_TRUE(put_text(object, *first).has_value());
  Object again{.kind = "signal", .id = "am:1"};
  auto duplicate = put_text(again, *first);
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, core::ErrorCode::kAlreadyExists);

  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(put_text(object, *second).has_value());
  EXPECT_EQ(object.version, 2);
  EXPECT_EQ(GetObject(*store, "signal", "am:1")->body["status"], "resolved");

  Object stale{.kind = "signal", .id = "am:1", .version = 1};
  auto conflict = put_text(stale, *first);
  ASSERT_FALSE(conflict.has_value());
  EXPECT_EQ(conflict.error().code, core::ErrorCode::kConflict);

  auto in_read = store->Read([&](Transaction& transaction) {
    Object other{.kind = "signal", .id = "am:2"};
    return transaction.PutSerialized(other, *first);
  });
  ASSERT_FALSE(in_read.has_value());
  EXPECT_THAT(in_read.error().message, HasSubstr("PutSerialized"));
}

TEST_P(StoreContractTest, GetMissingIsEmpty) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(GetObject(*store, "incident", "INC-404").has_value());
}

TEST_P(StoreContractTest, DeleteRemovesObject) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Object object{.kind = "incident", .id = "INC-1"};
  ASSERT_TRUE(PutObject(*store, object).has_value());

  auto deleted = store->Write(
      [](Transaction& transaction) { return transaction.Delete("incident", "INC-1"); });

  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  EXPECT_FALSE(GetObject(*store, "incident", "INC-1").has_value());
}

TEST_P(StoreContractTest, DeleteMissingIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto deleted = store->Write(
      [](Transaction& transaction) { return transaction.Delete("incident", "INC-404"); });
  ASSERT_FALSE(deleted.has_value());
  EXPECT_EQ(deleted.error().code, core::ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, ListPagesInIdOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (std::string id : {"c", "a", "e", "b", "d"}) {
    Object object{.kind = "change", .id = id};
    ASSERT_TRUE(PutObject(*store, object).has_value());
  }
  Object other_kind{.kind = "incident", .id = "a0"};
  ASSERT_TRUE(PutObject(*store, other_kind).has_value());

  EXPECT_EQ(ListIds(*store, {.kind = "change", .limit = 2}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ListIds(*store, {.kind = "change", .after_id = "b", .limit = 2}),
            (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(ListIds(*store, {.kind = "change", .after_id = "d", .limit = 2}),
            (std::vector<std::string>{"e"}));
}

// Ids with a counter suffix list by number, and a page's last id is a cursor in that order.
TEST_P(StoreContractTest, ListOrdersNumberedIdsByNumber) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (std::string id : {"CHG-10", "CHG-2", "CHG-1", "CHG-11", "CHG-9", "CHG-100"}) {
    Object object{.kind = "change", .id = id, .service = "checkout"};
    ASSERT_TRUE(PutObject(*store, object).has_value());
  }

  EXPECT_EQ(ListIds(*store, {.kind = "change"}),
            (std::vector<std::string>{"CHG-1", "CHG-2", "CHG-9", "CHG-10", "CHG-11", "CHG-100"}));
  EXPECT_EQ(ListIds(*store, {.kind = "change", .after_id = "CHG-9", .limit = 2}),
            (std::vector<std::string>{"CHG-10", "CHG-11"}));
  EXPECT_EQ(
      ListIds(*store, {.kind = "change", .service = "checkout", .after_id = "CHG-2", .limit = 2}),
      (std::vector<std::string>{"CHG-9", "CHG-10"}));
  EXPECT_EQ(ListIds(*store, {.kind = "change", .after_id = "CHG-100"}), std::vector<std::string>{});
}

TEST_P(StoreContractTest, ListFiltersByService) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (auto [id, service] : {std::pair{"1", "checkout"}, {"2", "search"}, {"3", "checkout"}}) {
    Object object{.kind = "change", .id = id, .service = service};
    ASSERT_TRUE(PutObject(*store, object).has_value());
  }

  EXPECT_EQ(ListIds(*store, {.kind = "change", .service = "checkout"}),
            (std::vector<std::string>{"1", "3"}));
}

TEST_P(StoreContractTest, ListRejectsNonPositiveLimit) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto read = store->Read([](Transaction& transaction) -> core::Result<void> {
    auto listed = transaction.List({.kind = "change", .limit = 0});
    if (!listed) return std::unexpected(listed.error());
    return {};
  });
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_P(StoreContractTest, ReadTransactionRejectsWrites) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto read = store->Read([](Transaction& transaction) {
    Object object{.kind = "incident", .id = "INC-1"};
    return transaction.Put(object);
  });
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_P(StoreContractTest, ReadsOwnWritesInsideAndAfter) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::optional<Object> seen_inside;

  auto written = store->Write([&](Transaction& transaction) -> core::Result<void> {
    Object object{.kind = "incident", .id = "INC-1"};
    object.body = {{"title", "inside"}};
    if (auto put = transaction.Put(object); !put) return put;
    auto found = transaction.Get("incident", "INC-1");
    if (!found) return std::unexpected(found.error());
    seen_inside = *found;
    return {};
  });

  ASSERT_TRUE(written.has_value()) << written.error().message;
  ASSERT_TRUE(seen_inside.has_value());
  EXPECT_EQ(seen_inside->body["title"], "inside");
  EXPECT_TRUE(GetObject(*store, "incident", "INC-1").has_value());
}

// Counters.

TEST_P(StoreContractTest, NextNumberHasNoGapsAfterRollback) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<int64_t> numbers;
  auto next = [&](bool commit) {
    return store->Write([&](Transaction& transaction) -> core::Result<void> {
      auto number = transaction.NextNumber("incident");
      if (!number) return std::unexpected(number.error());
      if (!commit) return core::MakeError(core::ErrorCode::kInternal, "rolled back on purpose");
      numbers.push_back(*number);
      return {};
    });
  };

  ASSERT_TRUE(next(true).has_value());
  ASSERT_TRUE(next(true).has_value());
  ASSERT_FALSE(next(false).has_value());
  ASSERT_TRUE(next(true).has_value());

  EXPECT_EQ(numbers, (std::vector<int64_t>{1, 2, 3}));
}

TEST_P(StoreContractTest, CountersAreIndependent) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  int64_t incident = 0;
  int64_t change = 0;
  auto written = store->Write([&](Transaction& transaction) -> core::Result<void> {
    for (int i = 0; i < 3; ++i) {
      auto number = transaction.NextNumber("incident");
      if (!number) return std::unexpected(number.error());
      incident = *number;
    }
    auto number = transaction.NextNumber("change");
    if (!number) return std::unexpected(number.error());
    change = *number;
    return {};
  });
  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_EQ(incident, 3);
  EXPECT_EQ(change, 1);
}

// The ledger.

TEST_P(StoreContractTest, FirstAppendIntroducesTheKey) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/1");

  auto entries = store->ReadEntries(0, 10);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  auto first = ledger::DecodeEntry((*entries)[0].encoded);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->action, "ledger.key_introduced");
  EXPECT_EQ(first->change["key_id"], signer_->public_key().key_id());
  auto second = ledger::DecodeEntry((*entries)[1].encoded);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->sequence, 1u);
  EXPECT_EQ(second->action, "record.written");
  EXPECT_EQ(second->subject, "record/1");
  EXPECT_EQ(second->time, clock_.Now());
}

TEST_P(StoreContractTest, EachAppendingWriteSignsOneCheckpoint) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/1");
  WriteRecord(*store, "record/2");
  auto no_append = store->Write([](Transaction& transaction) {
    Object object{.kind = "incident", .id = "INC-1"};
    return transaction.Put(object);
  });
  ASSERT_TRUE(no_append.has_value()) << no_append.error().message;

  auto checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  ASSERT_EQ(checkpoints->size(), 2u);
  EXPECT_EQ((*checkpoints)[0].tree_size, 2u);
  EXPECT_EQ((*checkpoints)[1].tree_size, 3u);
  EXPECT_TRUE(signer_->public_key().Verify((*checkpoints)[1]));
  auto latest = store->LatestCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  EXPECT_EQ((*latest)->signature, (*checkpoints)[1].signature);
}

TEST_P(StoreContractTest, IntervalSignsOncePerInterval) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::seconds(10);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/1");  // the first write signs: no signature is older than 10 s
  clock_.Advance(std::chrono::seconds(3));
  WriteRecord(*store, "record/2");
  WriteRecord(*store, "record/3");

  auto checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  ASSERT_EQ(checkpoints->size(), 1u);
  EXPECT_EQ((*checkpoints)[0].tree_size, 2u);
  // The unsigned entries are in the tree all the same: the log verifies, with its last checkpoint
  // covering a prefix.
  auto report = Verify(*store);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 4u);

  clock_.Advance(std::chrono::seconds(8));  // 11 s after the first signature
  WriteRecord(*store, "record/4");
  checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  ASSERT_EQ(checkpoints->size(), 2u);
  EXPECT_EQ((*checkpoints)[1].tree_size, 5u);
  EXPECT_TRUE(signer_->public_key().Verify((*checkpoints)[1]));
}

TEST_P(StoreContractTest, SignCheckpointSignsPendingOnce) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  WriteRecord(*store, "record/2");

  auto latest = store->SignCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  EXPECT_TRUE(signer_->public_key().Verify(**latest));

  auto again = store->SignCheckpoint();
  ASSERT_TRUE(again.has_value()) << again.error().message;
  auto checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  EXPECT_EQ(checkpoints->size(), 2u) << "nothing new to sign, so no second checkpoint of size 3";
  auto report = Verify(*store);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->checkpoints, 2u);
}

// The server's checkpoint thread calls SignCheckpoint every interval. While another connection
// holds the lock a ledger write needs, an idle call must still return at once, which shows that
// it opens no write transaction when nothing is left to sign.
TEST_P(StoreContractTest, SignCheckpointIdleTakesNoLock) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  WriteRecord(*store, "record/2");
  auto first = store->SignCheckpoint();
  ASSERT_TRUE(first.has_value()) << first.error().message;

  LedgerWriteLock lock(url_);
  auto idle = std::async(std::launch::async, [&store] { return store->SignCheckpoint(); });
  const bool returned = idle.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  lock.Release();  // so that a call waiting for the lock ends and the test can finish
  EXPECT_TRUE(returned) << "SignCheckpoint waited for the write lock with nothing to sign";
  auto latest = idle.get();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  auto checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  EXPECT_EQ(checkpoints->size(), 2u);
}

TEST_P(StoreContractTest, SignCheckpointAfterIdleSignsAppend) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  auto idle = store->SignCheckpoint();  // the first write signed already
  ASSERT_TRUE(idle.has_value()) << idle.error().message;

  WriteRecord(*store, "record/2");  // not signed: the last signature is under an hour old
  auto latest = store->SignCheckpoint();

  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  EXPECT_TRUE(signer_->public_key().Verify(**latest));
}

TEST_P(StoreContractTest, SignCheckpointAfterCrash) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  {
    auto store = OpenStore(options);
    ASSERT_NE(store, nullptr);
    WriteRecord(*store, "record/1");
    WriteRecord(*store, "record/2");  // not signed; the store then goes away without signing
  }
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  auto latest = store->SignCheckpoint();

  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  auto report = Verify(*store);
  ASSERT_TRUE(report.has_value()) << report.error().message;
}

TEST_P(StoreContractTest, SignCheckpointEmptyOrReadOnly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto empty = store->SignCheckpoint();
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_FALSE(empty->has_value());

  WriteRecord(*store, "record/1");
  StoreOptions reader = Options();
  reader.signer = nullptr;
  auto read_only = OpenStore(reader);
  ASSERT_NE(read_only, nullptr);
  auto latest = read_only->SignCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 2u);
}

TEST_P(StoreContractTest, RotationSignsDespiteInterval) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  auto next = ledger::Signer::Generate();
  ASSERT_TRUE(next.has_value()) << next.error().message;

  auto rotated = store->RotateLedgerKey(*next);

  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  auto latest = store->LatestCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 3u);
  EXPECT_TRUE((*next)->public_key().Verify(**latest));
}

TEST_P(StoreContractTest, JobHookRunsAfterCommit) {
  std::atomic<int> calls = 0;
  StoreOptions options = Options();
  options.on_job_enqueued = [&calls] { ++calls; };
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/1");
  EXPECT_EQ(calls, 0) << "no job was enqueued";

  auto enqueued = store->Write([&](Transaction& transaction) -> core::Result<void> {
    auto job = transaction.EnqueueJob("rollback", "incident/INC-1", {}, clock_.Now());
    if (!job) return std::unexpected(job.error());
    EXPECT_EQ(calls, 0) << "called before the commit";
    return {};
  });
  ASSERT_TRUE(enqueued.has_value()) << enqueued.error().message;
  EXPECT_EQ(calls, 1);

  auto rolled_back = store->Write([&](Transaction& transaction) -> core::Result<void> {
    auto job = transaction.EnqueueJob("rollback", "incident/INC-2", {}, clock_.Now());
    if (!job) return std::unexpected(job.error());
    return core::MakeError(core::ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(rolled_back.has_value());
  EXPECT_EQ(calls, 1) << "a rolled-back write enqueued nothing";
}

TEST_P(StoreContractTest, WriterRereadsStateAfterOtherAppends) {
  // Two stores on one database stand for two processes; each remembers the state it committed.
  auto first = OpenStore();
  auto second = OpenStore();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  WriteRecord(*first, "record/1");
  WriteRecord(*second, "record/2");
  WriteRecord(*first, "record/3");  // must not build on what `first` remembered after record/1
  auto failed = first->Write([](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger(
        {.actor = "test", .action = "record.written", .subject = "record/rolled-back"});
    if (!entry) return std::unexpected(entry.error());
    return core::MakeError(core::ErrorCode::kConflict, "roll this append back");
  });
  ASSERT_FALSE(failed.has_value());
  WriteRecord(*first, "record/4");  // must not build on the rolled-back append

  auto count = first->EntryCount();
  ASSERT_TRUE(count.has_value()) << count.error().message;
  EXPECT_EQ(*count, 5u);
  auto report = Verify(*first);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 5u);
}

TEST_P(StoreContractTest, AppendBetweenCheckpointsSkipsState) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/1");  // introduces the key and signs: both save the state
  EXPECT_EQ(SavedTreeSize(url_), "2");
  WriteRecord(*store, "record/2");
  WriteRecord(*store, "record/3");

  EXPECT_EQ(SavedTreeSize(url_), "2") << "an append without a checkpoint wrote ledger_state";
  auto report = Verify(*store);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 4u);
}

TEST_P(StoreContractTest, SignCheckpointSavesState) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  WriteRecord(*store, "record/2");
  WriteRecord(*store, "record/3");
  ASSERT_EQ(SavedTreeSize(url_), "2");

  auto latest = store->SignCheckpoint();

  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->tree_size, 4u);
  EXPECT_EQ(SavedTreeSize(url_), "4");
}

TEST_P(StoreContractTest, StateSavedAtUnsavedBound) {
  constexpr int kBound = static_cast<int>(LedgerAppender::kMaxUnsavedEntries);
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  ASSERT_EQ(SavedTreeSize(url_), "2");

  AppendMany(*store, kBound - 1);
  EXPECT_EQ(SavedTreeSize(url_), "2") << "saved before the bound was reached";
  WriteRecord(*store, "record/2");

  EXPECT_EQ(SavedTreeSize(url_), std::to_string(2 + kBound));
  auto checkpoints = store->ReadCheckpoints();
  ASSERT_TRUE(checkpoints.has_value()) << checkpoints.error().message;
  EXPECT_EQ(checkpoints->size(), 1u) << "the bound saves the state without signing";
}

// A writer that restarts finds ledger_state behind the entries and folds the stored leaf hashes
// in. Its checkpoint must sign the same root as a writer that appended the same entries without
// restarting.
TEST_P(StoreContractTest, LaggingStateGivesSameRoot) {
  StoreOptions options = Options();
  options.checkpoint_interval = std::chrono::hours(1);
  const std::string restarted_url = url_;
  const std::string continuous_url = NewDatabaseUrl();
  ASSERT_FALSE(continuous_url.empty());
  auto continuous = ::backout::store::OpenStore(continuous_url, options);
  ASSERT_TRUE(continuous.has_value()) << continuous.error().message;
  {
    auto before_restart = OpenStore(options);
    ASSERT_NE(before_restart, nullptr);
    for (int i = 0; i < 5; ++i) {
      WriteRecord(*before_restart, "record/" + std::to_string(i));
      WriteRecord(**continuous, "record/" + std::to_string(i));
      clock_.Advance(std::chrono::seconds(1));
    }
  }  // goes away without signing, as a killed process would
  ASSERT_EQ(SavedTreeSize(restarted_url), "2");

  auto restarted = OpenStore(options);
  ASSERT_NE(restarted, nullptr);
  WriteRecord(*restarted, "record/5");
  WriteRecord(**continuous, "record/5");
  // The restarted store's first write signs, because it has not signed before, and saves.
  EXPECT_EQ(SavedTreeSize(restarted_url), "7");
  auto restarted_checkpoint = restarted->SignCheckpoint();
  auto continuous_checkpoint = (*continuous)->SignCheckpoint();

  ASSERT_TRUE(restarted_checkpoint.has_value()) << restarted_checkpoint.error().message;
  ASSERT_TRUE(continuous_checkpoint.has_value()) << continuous_checkpoint.error().message;
  ASSERT_TRUE(restarted_checkpoint->has_value());
  ASSERT_TRUE(continuous_checkpoint->has_value());
  EXPECT_EQ((*restarted_checkpoint)->tree_size, 7u);
  EXPECT_EQ((*continuous_checkpoint)->tree_size, 7u);
  EXPECT_EQ(ledger::ToHex((*restarted_checkpoint)->root),
            ledger::ToHex((*continuous_checkpoint)->root));
  auto entries = restarted->ReadEntries(0, 100);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  std::vector<ledger::Hash> leaves;
  for (const ledger::StoredEntry& entry : *entries) leaves.push_back(entry.leaf_hash);
  EXPECT_EQ(ledger::ToHex((*restarted_checkpoint)->root), ledger::ToHex(ledger::RootOf(leaves)));
  auto report = Verify(*restarted);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->checkpoints, 2u);
}

TEST_P(StoreContractTest, LedgerVerifiesAfterWrites) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) WriteRecord(*store, "record/" + std::to_string(i));

  auto report = Verify(*store);

  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 6u);
  EXPECT_EQ(report->checkpoints, 5u);
  EXPECT_EQ(report->key_ids, (std::vector<std::string>{signer_->public_key().key_id()}));
}

TEST_P(StoreContractTest, AppendPreparedStoresAppendBytes) {
  // Strings that need escapes and a nested change, so that every encoding path is compared.
  const LedgerRecord record{.actor = "sre \"1\"\n",
                            .action = "signal.received",
                            .subject = "signals/Zoë ☃",
                            .change = {{"source", "alertmanager"},
                                       {"truncated_alerts", 3},
                                       {"signals", {{{"signal", "am:1"}, {"status", "firing"}}}}}};
  const std::string append_url = url_;
  const std::string prepared_url = NewDatabaseUrl();
  auto by_append = OpenStore();
  url_ = prepared_url;
  auto by_prepared = OpenStore();
  ASSERT_NE(by_append, nullptr);
  ASSERT_NE(by_prepared, nullptr);

  auto appended = by_append->Write([&](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger(record);
    if (!entry) return std::unexpected(entry.error());
    return {};
  });
  ASSERT_TRUE(appended.has_value()) << appended.error().message;
  auto prepared = ledger::PrepareEntry(record.actor, record.action, record.subject, record.change);
  ASSERT_TRUE(prepared.has_value()) << prepared.error().message;
  uint64_t sequence = 0;
  auto appended_prepared = by_prepared->Write([&](Transaction& transaction) -> core::Result<void> {
    auto appended_sequence = transaction.AppendPreparedLedger(*prepared);
    if (!appended_sequence) return std::unexpected(appended_sequence.error());
    sequence = *appended_sequence;
    return {};
  });
  ASSERT_TRUE(appended_prepared.has_value()) << appended_prepared.error().message;

  // Sequence 0 of both logs introduces the signer's key.
  EXPECT_EQ(sequence, 1u);
  const std::string select = "SELECT encoded FROM ledger_entries WHERE sequence = 1";
  const std::string select_hash = "SELECT leaf_hash FROM ledger_entries WHERE sequence = 1";
  EXPECT_FALSE(QueryRaw(append_url, select).empty());
  EXPECT_EQ(QueryRaw(prepared_url, select), QueryRaw(append_url, select));
  EXPECT_EQ(QueryRaw(prepared_url, select_hash), QueryRaw(append_url, select_hash));
  auto report = Verify(*by_prepared);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->entries, 2u);
}

TEST_P(StoreContractTest, AppendPreparedInReadFails) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto prepared =
      ledger::PrepareEntry("sre-1", "incident.opened", "incident/INC-1", nlohmann::json::object());
  ASSERT_TRUE(prepared.has_value()) << prepared.error().message;

  auto read = store->Read([&](Transaction& transaction) -> core::Result<void> {
    auto sequence = transaction.AppendPreparedLedger(*prepared);
    if (!sequence) return std::unexpected(sequence.error());
    return {};
  });

  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_THAT(read.error().message, HasSubstr("AppendPreparedLedger"));
}

TEST_P(StoreContractTest, AppendContinuesAfterReopen) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    WriteRecord(*store, "record/1");
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);

  WriteRecord(*store, "record/2");

  auto count = store->EntryCount();
  ASSERT_TRUE(count.has_value()) << count.error().message;
  EXPECT_EQ(*count, 3u);
  auto report = Verify(*store);
  EXPECT_TRUE(report.has_value()) << report.error().message;
}

TEST_P(StoreContractTest, AppendWithoutSignerFails) {
  StoreOptions options = Options();
  options.signer = nullptr;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  auto written = store->Write([](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger({.actor = "tester", .action = "record.written"});
    if (!entry) return std::unexpected(entry.error());
    return {};
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_THAT(written.error().message, HasSubstr("signing key"));
}

TEST_P(StoreContractTest, AppendWithReplacedKeyFails) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    WriteRecord(*store, "record/1");
  }
  const std::string original_key = signer_->public_key().key_id();
  auto replacement = ledger::Signer::Generate();
  ASSERT_TRUE(replacement.has_value());
  StoreOptions options = Options();
  options.signer = *replacement;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);

  auto written = store->Write([](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger({.actor = "tester", .action = "record.written"});
    if (!entry) return std::unexpected(entry.error());
    return {};
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_THAT(written.error().message, HasSubstr(original_key));
  EXPECT_THAT(written.error().message, HasSubstr((*replacement)->public_key().key_id()));
}

TEST_P(StoreContractTest, RotatedKeySignsLaterCheckpoints) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");
  auto next = ledger::Signer::Generate();
  ASSERT_TRUE(next.has_value());

  auto rotated = store->RotateLedgerKey(*next);
  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  WriteRecord(*store, "record/2");

  auto latest = store->LatestCheckpoint();
  ASSERT_TRUE(latest.has_value()) << latest.error().message;
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->key_id, (*next)->public_key().key_id());
  auto entries = store->ReadEntries(2, 1);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  ASSERT_EQ(entries->size(), 1u);
  auto rotation = ledger::DecodeEntry((*entries)[0].encoded);
  ASSERT_TRUE(rotation.has_value());
  EXPECT_EQ(rotation->action, "ledger.key_rotated");
  auto report = Verify(*store);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->key_ids, (std::vector<std::string>{signer_->public_key().key_id(),
                                                       (*next)->public_key().key_id()}));
}

TEST_P(StoreContractTest, RotationRetiresTheOldKey) {
  auto next = ledger::Signer::Generate();
  ASSERT_TRUE(next.has_value());
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    WriteRecord(*store, "record/1");
    ASSERT_TRUE(store->RotateLedgerKey(*next).has_value());
  }
  auto store = OpenStore();  // still the old key
  ASSERT_NE(store, nullptr);

  auto written = store->Write([](Transaction& transaction) -> core::Result<void> {
    auto entry = transaction.AppendLedger({.actor = "tester", .action = "record.written"});
    if (!entry) return std::unexpected(entry.error());
    return {};
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, core::ErrorCode::kFailedPrecondition);
}

TEST_P(StoreContractTest, RotationToUsedKeyFails) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WriteRecord(*store, "record/1");

  auto rotated = store->RotateLedgerKey(signer_);

  ASSERT_FALSE(rotated.has_value());
  EXPECT_EQ(rotated.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_P(StoreContractTest, ConcurrentWritersKeepLedgerGapless) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 15;
  // Two stores on one database stand for two processes (or two `backout serve` replicas).
  std::vector<std::unique_ptr<Store>> stores;
  stores.push_back(OpenStore());
  stores.push_back(OpenStore());
  ASSERT_NE(stores[0], nullptr);
  ASSERT_NE(stores[1], nullptr);
  std::atomic<int> failures = 0;
  std::mutex numbers_mutex;
  std::vector<int64_t> numbers;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& store = *stores[t % stores.size()];
      for (int i = 0; i < kWritesPerThread; ++i) {
        int64_t taken = 0;
        auto written = store.Write([&](Transaction& transaction) -> core::Result<void> {
          auto number = transaction.NextNumber("incident");
          if (!number) return std::unexpected(number.error());
          taken = *number;
          Object object{.kind = "incident", .id = fmt::format("INC-{}", *number)};
          if (auto put = transaction.Put(object); !put) return put;
          auto entry = transaction.AppendLedger({.actor = fmt::format("thread-{}", t),
                                                 .action = "incident.opened",
                                                 .subject = object.kind + "/" + object.id});
          if (!entry) return std::unexpected(entry.error());
          return {};
        });
        if (!written) {
          ++failures;
          ADD_FAILURE() << written.error().message;
          continue;
        }
        std::lock_guard lock(numbers_mutex);
        numbers.push_back(taken);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  ASSERT_EQ(failures.load(), 0);
  std::set<int64_t> unique(numbers.begin(), numbers.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kWritesPerThread));
  EXPECT_EQ(*unique.rbegin(), kThreads * kWritesPerThread);
  auto count = stores[0]->EntryCount();
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, static_cast<uint64_t>(1 + kThreads * kWritesPerThread));
  auto report = Verify(*stores[0]);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->checkpoints, static_cast<uint64_t>(kThreads * kWritesPerThread));
}

TEST_P(StoreContractTest, TableDigestsTrackChanges) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto before = store->TableDigests();
  ASSERT_TRUE(before.has_value()) << before.error().message;
  auto again = store->TableDigests();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*before, *again);

  Object object{.kind = "incident", .id = "INC-1"};
  ASSERT_TRUE(PutObject(*store, object).has_value());

  auto after = store->TableDigests();
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(before->at("objects"), after->at("objects"));
  EXPECT_EQ(before->at("ledger_entries"), after->at("ledger_entries"));
  EXPECT_EQ(before->size(), 8u);
}

TEST_P(StoreContractTest, BackendNameMatches) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Backend(), IsPostgres() ? "postgresql" : "sqlite");
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(StoreContractTest);

}  // namespace
}  // namespace backout::store
