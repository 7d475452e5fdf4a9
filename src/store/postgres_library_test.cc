#include "store/postgres_library.h"

#include <gtest/gtest.h>

namespace backout::store {
namespace {

// The suite is named after libpq because CMake labels tests whose names contain "Postgres" as
// needing the test PostgreSQL cluster, and these tests need no server.
TEST(LibpqTest, LoadResolvesEveryFunction) {
  const core::Result<Libpq>& libpq = LoadLibpq();
  ASSERT_TRUE(libpq.has_value()) << libpq.error().message;
#define BACKOUT_EXPECT_RESOLVED(name) EXPECT_NE(libpq->name, nullptr) << #name;
  BACKOUT_LIBPQ_FUNCTIONS(BACKOUT_EXPECT_RESOLVED)
#undef BACKOUT_EXPECT_RESOLVED
}

TEST(LibpqTest, LoadReturnsSameTable) {
  const core::Result<Libpq>& first = LoadLibpq();
  const core::Result<Libpq>& second = LoadLibpq();
  EXPECT_EQ(&first, &second);
}

TEST(LibpqTest, ConnectFailureNamesServer) {
  // Port 1 on loopback has no PostgreSQL server, so the call reaches libpq and fails there.
  const core::Result<Libpq>& libpq = LoadLibpq();
  ASSERT_TRUE(libpq.has_value()) << libpq.error().message;
  PGconn* connection = libpq->PQconnectdb("postgresql://127.0.0.1:1/none?connect_timeout=2");
  ASSERT_NE(connection, nullptr);
  EXPECT_EQ(libpq->PQstatus(connection), CONNECTION_BAD);
  EXPECT_NE(std::string(libpq->PQerrorMessage(connection)).find("127.0.0.1"), std::string::npos)
      << libpq->PQerrorMessage(connection);
  libpq->PQfinish(connection);
}

TEST(LibpqTest, MissingLibraryNamesPackage) {
  core::Result<Libpq> libpq = OpenLibpq("libbackout-absent-pq.so.5");
  ASSERT_FALSE(libpq.has_value());
  EXPECT_EQ(libpq.error().code, core::ErrorCode::kUnavailable);
  const std::string& message = libpq.error().message;
  EXPECT_NE(message.find("libbackout-absent-pq.so.5"), std::string::npos) << message;
  EXPECT_NE(message.find("libpq5 package"), std::string::npos) << message;
  EXPECT_NE(message.find("PostgreSQL stores"), std::string::npos) << message;
}

}  // namespace
}  // namespace backout::store
