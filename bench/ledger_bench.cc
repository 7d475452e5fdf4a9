// Ledger benchmarks that print Backout's figure beside a peer measured in the same run:
//   1. durable appends per second vs a bare SQLite insert of the same size, same `synchronous`;
//   2. leaf hashing of loaded entries vs `openssl speed -evp sha256` at the mean entry size.
// Appends run with the server's default checkpoint interval (1 s), then with a checkpoint signed in
// every write (`ledger.checkpoint_interval: 0`) for comparison.
// Usage: ledger_bench [--appends N] [--synchronous FULL|NORMAL|OFF] [--database postgresql://…]
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "store/store.h"
#include "store/system_clock.h"

namespace {

using namespace backout;
using Seconds = std::chrono::duration<double>;

struct Options {
  int appends = 2000;
  std::string synchronous = "FULL";
  std::string postgres_url;
};

std::string Payload(int i) {
  // About the size of a real incident event once encoded.
  return fmt::format("{:0>180}", i);
}

double BareSqliteInsertsPerSecond(const std::filesystem::path& path, int count,
                                  const std::string& synchronous, size_t row_size) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, ("PRAGMA synchronous=" + synchronous).c_str(), nullptr, nullptr, nullptr);
  sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (body) VALUES (?)", -1, &insert, nullptr);
  const std::string body(row_size, 'x');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    sqlite3_bind_blob(insert, 1, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const Seconds elapsed = std::chrono::steady_clock::now() - start;
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return count / elapsed.count();
}

struct AppendResult {
  double per_second = 0;
  double mean_entry_size = 0;
};

core::Result<AppendResult> BackoutAppendsPerSecond(const std::string& url, int count,
                                                   const std::string& synchronous,
                                                   const std::filesystem::path& key_dir,
                                                   core::Duration checkpoint_interval) {
  store::SystemClock clock;
  auto signer = ledger::Signer::LoadOrCreate(key_dir / "bench-key.pem");
  if (!signer) return std::unexpected(signer.error());
  store::StoreOptions options{.clock = &clock,
                              .signer = *signer,
                              .checkpoint_interval = checkpoint_interval,
                              .sqlite_synchronous = synchronous};
  auto db = store::OpenStore(url, options);
  if (!db) return std::unexpected(db.error());

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    auto written = (*db)->Write([&](store::Transaction& tx) -> core::Result<void> {
      auto entry = tx.AppendLedger({.actor = "bench",
                                    .action = "bench.appended",
                                    .subject = fmt::format("bench/{}", i),
                                    .change = {{"payload", Payload(i)}}});
      if (!entry) return std::unexpected(entry.error());
      return {};
    });
    if (!written) return std::unexpected(written.error());
  }
  const Seconds elapsed = std::chrono::steady_clock::now() - start;

  auto size = (*db)->EntryCount();
  if (!size) return std::unexpected(size.error());
  auto rows = (*db)->ReadEntries(0, *size);
  if (!rows) return std::unexpected(rows.error());
  double total = 0;
  for (const auto& row : *rows) total += row.encoded.size();
  return AppendResult{count / elapsed.count(), total / rows->size()};
}

core::Result<double> BackoutHashBytesPerSecond(const std::string& url) {
  store::SystemClock clock;
  store::StoreOptions options{.clock = &clock, .migrate = false};
  auto db = store::OpenStore(url, options);
  if (!db) return std::unexpected(db.error());
  auto size = (*db)->EntryCount();
  if (!size) return std::unexpected(size.error());
  auto rows = (*db)->ReadEntries(0, *size);
  if (!rows) return std::unexpected(rows.error());

  // Repeat so the measurement lasts long enough to be stable.
  double bytes = 0;
  ledger::Hash sink{};
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 200; ++round) {
    for (const auto& row : *rows) {
      const ledger::Hash leaf = ledger::LeafHash(row.encoded);
      sink[0] ^= leaf[0];
      bytes += row.encoded.size();
    }
  }
  const Seconds elapsed = std::chrono::steady_clock::now() - start;
  if (sink[0] == 0x5a) std::fprintf(stderr, " ");
  return bytes / elapsed.count();
}

// Runs `openssl speed -evp sha256 -bytes SIZE` and returns its bytes per second.
double OpensslSha256BytesPerSecond(size_t size) {
  const std::string command =
      fmt::format("openssl speed -seconds 2 -bytes {} -evp sha256 2>/dev/null | tail -n 1", size);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return 0;
  char line[512] = {};
  if (!fgets(line, sizeof line, pipe.get())) return 0;
  // The last line reads "sha256  123456.78k": thousands of bytes per second.
  std::string text(line);
  const auto k = text.rfind('k');
  const auto space = text.rfind(' ', k);
  if (k == std::string::npos || space == std::string::npos) return 0;
  return std::strtod(text.substr(space + 1, k - space - 1).c_str(), nullptr) * 1000.0;
}

void PrintRow(const std::string& name, double ours, double peer, const std::string& unit,
              double target) {
  const double ratio = peer > 0 ? ours / peer : 0;
  fmt::print("{:<44} {:>14.0f} {:>14.0f} {:<10} {:>6.2f}  (target >= {:.1f}) {}\n", name, ours,
             peer, unit, ratio, target, ratio >= target ? "ok" : "MISSED");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--appends") options.appends = std::atoi(argv[i + 1]);
    if (flag == "--synchronous") options.synchronous = argv[i + 1];
    if (flag == "--database") options.postgres_url = argv[i + 1];
  }

  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("backout-bench-{}", static_cast<long>(getpid()));
  std::filesystem::create_directories(dir);
  const std::string url = "sqlite:" + (dir / "ledger.db").string();

  constexpr core::Duration kServerDefault = std::chrono::seconds(1);
  auto appended =
      BackoutAppendsPerSecond(url, options.appends, options.synchronous, dir, kServerDefault);
  if (!appended) {
    fmt::print(stderr, "benchmark failed: {}\n", appended.error().message);
    return 1;
  }
  auto every_write =
      BackoutAppendsPerSecond("sqlite:" + (dir / "every-write.db").string(), options.appends,
                              options.synchronous, dir, core::Duration::zero());
  if (!every_write) {
    fmt::print(stderr, "benchmark failed: {}\n", every_write.error().message);
    return 1;
  }
  const double bare =
      BareSqliteInsertsPerSecond(dir / "bare.db", options.appends, options.synchronous,
                                 static_cast<size_t>(appended->mean_entry_size));
  fmt::print("{:<44} {:>14} {:>14} {:<10} {:>6}\n", "benchmark", "backout", "peer", "unit",
             "ratio");
  PrintRow(fmt::format("durable append, sqlite synchronous={}", options.synchronous),
           appended->per_second, bare, "ops/s", 0.5);
  fmt::print("{:<44} {:>14.0f} {:>14.0f} {:<10} {:>6.2f}  (checkpoint_interval: 0)\n",
             "  the same, a checkpoint signed in every write", every_write->per_second, bare,
             "ops/s", bare > 0 ? every_write->per_second / bare : 0);

  auto hashed = BackoutHashBytesPerSecond(url);
  if (!hashed) {
    fmt::print(stderr, "benchmark failed: {}\n", hashed.error().message);
    return 1;
  }
  const auto mean = static_cast<size_t>(appended->mean_entry_size);
  PrintRow(fmt::format("leaf hashing at {} bytes vs openssl speed", mean), *hashed,
           OpensslSha256BytesPerSecond(mean), "bytes/s", 0.5);

  if (!options.postgres_url.empty()) {
    auto pg = BackoutAppendsPerSecond(options.postgres_url, options.appends, options.synchronous,
                                      dir, kServerDefault);
    if (!pg) {
      fmt::print(stderr, "postgresql benchmark failed: {}\n", pg.error().message);
      return 1;
    }
    fmt::print("{:<44} {:>14.0f} {:>14} {:<10}\n", "durable append, postgresql", pg->per_second,
               "-", "ops/s");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
