// backout_test_postgres start|stop INFO_FILE: starts or stops the PostgreSQL cluster that a whole
// CTest run shares (the `postgres_cluster` fixture). `start` first stops a cluster left behind by
// an interrupted run, then writes the new cluster's folder and port to INFO_FILE.

#include <cstdio>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "support/postgres_server.h"

namespace {

using backout::testing::PostgresServer;

int StopDescribed(const std::filesystem::path& info_file) {
  if (!std::filesystem::exists(info_file)) return 0;
  int status = 0;
  auto server = PostgresServer::Attach(info_file);
  if (!server) {
    fmt::print(stderr, "{}\n", server.error());
    status = 1;
  } else if (auto stopped = (*server)->Stop(); !stopped) {
    fmt::print(stderr, "{}\n", stopped.error());
    status = 1;
  }
  std::error_code error;
  std::filesystem::remove(info_file, error);
  if (error) {
    fmt::print(stderr, "cannot remove {}: {}\n", info_file.string(), error.message());
    status = 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view command = argc == 3 ? argv[1] : "";
  if (command != "start" && command != "stop") {
    fmt::print(stderr, "usage: {} start|stop INFO_FILE\n", argv[0]);
    return 2;
  }
  const std::filesystem::path info_file = argv[2];

  if (command == "stop") return StopDescribed(info_file);

  if (StopDescribed(info_file) != 0) {
    fmt::print(stderr, "could not stop the cluster an earlier run left behind; starting anew\n");
  }
  auto server = PostgresServer::Start(/*stop_at_exit=*/false);
  if (!server) {
    fmt::print(stderr, "cannot start the PostgreSQL test cluster: {}\n", server.error());
    return 1;
  }
  std::filesystem::create_directories(info_file.parent_path());
  if (auto written = (*server)->WriteInfo(info_file); !written) {
    fmt::print(stderr, "{}\n", written.error());
    (void)(*server)->Stop();
    return 1;
  }
  fmt::print("PostgreSQL test cluster listening on 127.0.0.1:{}\n", (*server)->port());
  return 0;
}
