// Ledger benchmarks that print Backout's figure beside a peer measured in the same run:
//   1. durable appends per second vs a bare SQLite insert of the same size, same `synchronous`;
//   2. leaf hashing of loaded entries vs `openssl speed -evp sha256` at the mean entry size.
// Appends run with the server's default checkpoint interval (1 s) and, for comparison, with a
// checkpoint signed in every write (`ledger.checkpoint_interval: 0`). The two and the bare insert
// take turns in --rounds rounds, so that other work on the machine slows all three alike.
// Usage: ledger_bench [--appends N] [--rounds N] [--synchronous FULL|NORMAL|OFF]
//                     [--database postgresql://…]
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
  int rounds = 10;
  std::string synchronous = "FULL";
  std::string postgres_url;
};

std::string Payload(int i) {
  // About the size of a real incident event once encoded.
  return fmt::format("{:0>180}", i);
}

// Inserts rows of a fixed size into a bare SQLite table, one transaction per row.
class BareSqliteInserter {
 public:
  BareSqliteInserter(const std::filesystem::path& path, const std::string& synchronous,
                     size_t row_size)
      : body_(row_size, 'x') {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    sqlite3_exec(db_, ("PRAGMA synchronous=" + synchronous).c_str(), nullptr, nullptr, nullptr);
    sqlite3_exec(db_, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)", nullptr, nullptr,
                 nullptr);
    sqlite3_prepare_v2(db_, "INSERT INTO t (body) VALUES (?)", -1, &insert_, nullptr);
  }
  ~BareSqliteInserter() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  BareSqliteInserter(const BareSqliteInserter&) = delete;
  BareSqliteInserter& operator=(const BareSqliteInserter&) = delete;

  // Inserts `count` rows and returns the time taken.
  Seconds Insert(int count) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      sqlite3_bind_blob(insert_, 1, body_.data(), static_cast<int>(body_.size()), SQLITE_STATIC);
      sqlite3_step(insert_);
      sqlite3_reset(insert_);
      sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    }
    return std::chrono::steady_clock::now() - start;
  }

 private:
  const std::string body_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// Appends ledger entries through a Store, one write transaction per entry.
class BackoutAppender {
 public:
  static core::Result<std::unique_ptr<BackoutAppender>> Open(const std::string& url,
                                                             const std::string& synchronous,
                                                             const std::filesystem::path& key_dir,
                                                             core::Duration checkpoint_interval) {
    auto appender = std::unique_ptr<BackoutAppender>(new BackoutAppender());
    auto signer = ledger::Signer::LoadOrCreate(key_dir / "bench-key.pem");
    if (!signer) return std::unexpected(signer.error());
    store::StoreOptions options{.clock = &appender->clock_,
                                .signer = *signer,
                                .checkpoint_interval = checkpoint_interval,
                                .sqlite_synchronous = synchronous};
    auto db = store::OpenStore(url, options);
    if (!db) return std::unexpected(db.error());
    appender->store_ = std::move(*db);
    return appender;
  }

  // Appends `count` entries and returns the time taken.
  core::Result<Seconds> Append(int count) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i, ++next_) {
      auto written = store_->Write([&](store::Transaction& tx) -> core::Result<void> {
        auto entry = tx.AppendLedger({.actor = "bench",
                                      .action = "bench.appended",
                                      .subject = fmt::format("bench/{}", next_),
                                      .change = {{"payload", Payload(next_)}}});
        if (!entry) return std::unexpected(entry.error());
        return {};
      });
      if (!written) return std::unexpected(written.error());
    }
    return std::chrono::steady_clock::now() - start;
  }

  // Returns the mean size of the stored entries in bytes.
  core::Result<double> MeanEntrySize() {
    auto size = store_->EntryCount();
    if (!size) return std::unexpected(size.error());
    auto rows = store_->ReadEntries(0, *size);
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return 0.0;
    double total = 0;
    for (const auto& row : *rows) total += row.encoded.size();
    return total / rows->size();
  }

 private:
  BackoutAppender() = default;

  store::SystemClock clock_;
  std::unique_ptr<store::Store> store_;
  int next_ = 0;
};

struct AppendRates {
  double backout = 0;      // appends per second at the server's checkpoint interval
  double every_write = 0;  // appends per second with a checkpoint in every write
  double bare = 0;         // bare SQLite inserts per second
  double mean_entry_size = 0;
};

// Measures the three writers in `rounds` interleaved rounds, so that load from other processes
// falls on all three alike, and sums each writer's time over the rounds.
core::Result<AppendRates> MeasureAppends(const Options& options, const std::filesystem::path& dir) {
  constexpr core::Duration kServerDefault = std::chrono::seconds(1);
  auto backout = BackoutAppender::Open("sqlite:" + (dir / "ledger.db").string(),
                                       options.synchronous, dir, kServerDefault);
  if (!backout) return std::unexpected(backout.error());
  auto every_write = BackoutAppender::Open("sqlite:" + (dir / "every-write.db").string(),
                                           options.synchronous, dir, core::Duration::zero());
  if (!every_write) return std::unexpected(every_write.error());

  std::unique_ptr<BareSqliteInserter> bare;
  AppendRates rates;
  Seconds backout_time{0};
  Seconds every_write_time{0};
  Seconds bare_time{0};
  int done = 0;
  for (int round = 0; round < options.rounds; ++round) {
    const int count = (options.appends - done) / (options.rounds - round);
    auto appended = (*backout)->Append(count);
    if (!appended) return std::unexpected(appended.error());
    backout_time += *appended;
    auto signed_each = (*every_write)->Append(count);
    if (!signed_each) return std::unexpected(signed_each.error());
    every_write_time += *signed_each;
    if (bare == nullptr) {
      // The bare rows take the size of the entries, known once the first round stored some.
      auto mean = (*backout)->MeanEntrySize();
      if (!mean) return std::unexpected(mean.error());
      rates.mean_entry_size = *mean;
      bare = std::make_unique<BareSqliteInserter>(dir / "bare.db", options.synchronous,
                                                  static_cast<size_t>(*mean));
    }
    bare_time += bare->Insert(count);
    done += count;
  }
  rates.backout = done / backout_time.count();
  rates.every_write = done / every_write_time.count();
  rates.bare = done / bare_time.count();
  return rates;
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
    if (flag == "--rounds") options.rounds = std::atoi(argv[i + 1]);
    if (flag == "--database") options.postgres_url = argv[i + 1];
  }
  if (options.rounds < 1 || options.appends < options.rounds) {
    fmt::print(stderr,
               "invalid --appends {} or --rounds {}: give at least one round and at least one "
               "append per round\n",
               options.appends, options.rounds);
    return 2;
  }

  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("backout-bench-{}", static_cast<long>(getpid()));
  std::filesystem::create_directories(dir);
  const std::string url = "sqlite:" + (dir / "ledger.db").string();

  auto rates = MeasureAppends(options, dir);
  if (!rates) {
    fmt::print(stderr, "benchmark failed: {}\n", rates.error().message);
    return 1;
  }
  fmt::print("{:<44} {:>14} {:>14} {:<10} {:>6}\n", "benchmark", "backout", "peer", "unit",
             "ratio");
  PrintRow(fmt::format("durable append, sqlite synchronous={}", options.synchronous),
           rates->backout, rates->bare, "ops/s", 0.5);
  fmt::print("{:<44} {:>14.0f} {:>14.0f} {:<10} {:>6.2f}  (checkpoint_interval: 0)\n",
             "  the same, a checkpoint signed in every write", rates->every_write, rates->bare,
             "ops/s", rates->bare > 0 ? rates->every_write / rates->bare : 0);
  fmt::print("  ({} appends of each kind in {} interleaved rounds)\n", options.appends,
             options.rounds);

  auto hashed = BackoutHashBytesPerSecond(url);
  if (!hashed) {
    fmt::print(stderr, "benchmark failed: {}\n", hashed.error().message);
    return 1;
  }
  const auto mean = static_cast<size_t>(rates->mean_entry_size);
  PrintRow(fmt::format("leaf hashing at {} bytes vs openssl speed", mean), *hashed,
           OpensslSha256BytesPerSecond(mean), "bytes/s", 0.5);

  if (!options.postgres_url.empty()) {
    auto pg = BackoutAppender::Open(options.postgres_url, options.synchronous, dir,
                                    std::chrono::seconds(1));
    if (!pg) {
      fmt::print(stderr, "postgresql benchmark failed: {}\n", pg.error().message);
      return 1;
    }
    auto elapsed = (*pg)->Append(options.appends);
    if (!elapsed) {
      fmt::print(stderr, "postgresql benchmark failed: {}\n", elapsed.error().message);
      return 1;
    }
    fmt::print("{:<44} {:>14.0f} {:>14} {:<10}\n", "durable append, postgresql",
               options.appends / elapsed->count(), "-", "ops/s");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
