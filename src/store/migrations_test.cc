// Schema migrations on both backends.

#include <barrier>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/migrations.h"
#include "store/store_test_support.h"

namespace backout::store {
namespace {

using ::testing::HasSubstr;

using MigrationTest = StoreTest;

TEST(MigrationsTest, NumberedFromOneWithoutGaps) {
  int expected = 1;
  for (const Migration& migration : Migrations()) {
    EXPECT_EQ(migration.version, expected++);
    EXPECT_FALSE(migration.sqlite.empty());
    EXPECT_FALSE(migration.postgresql.empty());
  }
  EXPECT_EQ(LatestSchemaVersion(), expected - 1);
}

TEST_P(MigrationTest, FreshDatabaseGetsLatestVersion) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);

  EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());
  EXPECT_EQ(QueryRaw(url_, "SELECT max(version) FROM schema_version"),
            std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(QueryRaw(url_, "SELECT count(*) FROM schema_version"),
            std::to_string(LatestSchemaVersion()));
}

TEST_P(MigrationTest, ReopenDoesNotMigrateAgain) {
  ASSERT_NE(OpenStore(), nullptr);
  const std::string applied_at = QueryRaw(url_, "SELECT applied_at FROM schema_version");
  clock_.Advance(std::chrono::hours(1));

  ASSERT_NE(OpenStore(), nullptr);

  EXPECT_EQ(QueryRaw(url_, "SELECT count(*) FROM schema_version"),
            std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(QueryRaw(url_, "SELECT applied_at FROM schema_version"), applied_at);
}

TEST_P(MigrationTest, NewerDatabaseIsRejected) {
  ASSERT_NE(OpenStore(), nullptr);
  const int newer = LatestSchemaVersion() + 1;
  ExecuteRaw(url_,
             fmt::format("INSERT INTO schema_version (version, applied_at) VALUES ({}, 0)", newer));

  auto store = ::backout::store::OpenStore(url_, Options());

  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_THAT(store.error().message, HasSubstr(fmt::format("schema version {}", newer)));
  EXPECT_THAT(store.error().message, HasSubstr(fmt::format("version {}", LatestSchemaVersion())));
  EXPECT_THAT(store.error().message, HasSubstr("upgrade backout"));
}

TEST_P(MigrationTest, OldDatabaseIsRejectedWithoutMigrate) {
  StoreOptions options = Options();
  options.migrate = false;

  auto store = ::backout::store::OpenStore(url_, options);

  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_THAT(store.error().message, HasSubstr("schema version 0"));
}

TEST_P(MigrationTest, ConcurrentFirstOpensMigrateOnce) {
  constexpr int kOpeners = 4;
  std::barrier start(kOpeners);
  std::vector<std::unique_ptr<Store>> stores(kOpeners);
  std::vector<std::string> errors(kOpeners);

  std::vector<std::thread> openers;
  for (int i = 0; i < kOpeners; ++i) {
    openers.emplace_back([&, i] {
      start.arrive_and_wait();
      auto store = ::backout::store::OpenStore(url_, Options());
      if (store) {
        stores[i] = std::move(*store);
      } else {
        errors[i] = store.error().message;
      }
    });
  }
  for (std::thread& opener : openers) opener.join();

  for (int i = 0; i < kOpeners; ++i) {
    EXPECT_NE(stores[i], nullptr) << "open " << i << " failed: " << errors[i];
  }
  for (const Migration& migration : Migrations()) {
    EXPECT_EQ(QueryRaw(url_, fmt::format("SELECT count(*) FROM schema_version WHERE version = {}",
                                         migration.version)),
              "1")
        << "migration " << migration.version;
  }
}

// Counts the indexes named `name` in the database at `url`.
std::string IndexCount(const std::string& url, bool postgres, const std::string& name) {
  return QueryRaw(url, postgres ? fmt::format("SELECT count(*) FROM pg_indexes WHERE indexname = "
                                              "'{}'",
                                              name)
                                : fmt::format("SELECT count(*) FROM sqlite_master WHERE type = "
                                              "'index' AND name = '{}'",
                                              name));
}

TEST_P(MigrationTest, FreshDatabaseHasNoServiceIndex) {
  ASSERT_NE(OpenStore(), nullptr);

  EXPECT_EQ(IndexCount(url_, IsPostgres(), "objects_by_service"), "0");
  EXPECT_EQ(IndexCount(url_, IsPostgres(), "objects_by_id_order"), "1");
  EXPECT_EQ(IndexCount(url_, IsPostgres(), "objects_by_service_id_order"), "1");
}

TEST_P(MigrationTest, VersionTwoDropsServiceIndex) {
  // A database at version 2: the latest schema with the index and without the row of version 3.
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Write([](Transaction& tx) -> core::Result<void> {
      Object object;
      object.kind = "incident";
      object.id = "INC-1";
      object.service = "checkout";
      return tx.Put(object);
    }));
  }
  ExecuteRaw(url_, "CREATE INDEX objects_by_service ON objects (kind, service, id)");
  ExecuteRaw(url_, "DELETE FROM schema_version WHERE version = 3");
  ASSERT_EQ(IndexCount(url_, IsPostgres(), "objects_by_service"), "1");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);

  EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());
  EXPECT_EQ(QueryRaw(url_, "SELECT count(*) FROM schema_version WHERE version = 3"), "1");
  EXPECT_EQ(IndexCount(url_, IsPostgres(), "objects_by_service"), "0");
  std::vector<Object> listed;
  ASSERT_TRUE(store->Read([&](Transaction& tx) -> core::Result<void> {
    ListQuery query;
    query.kind = "incident";
    query.service = "checkout";
    auto objects = tx.List(query);
    if (!objects) return std::unexpected(objects.error());
    listed = std::move(*objects);
    return {};
  }));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, "INC-1");
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(MigrationTest);

}  // namespace
}  // namespace backout::store
