// Growth: how per-entry costs change as the store grows, on SQLite (synchronous FULL).
//   1. Ledger append in batches (`--batch` entries per transaction): the cost per entry of the
//      last `--window` entries before the log reaches each size, next to a bare SQLite insert of
//      rows of the same size, in the same batches, into a table grown to the same size.
//   2. Ledger verification (ledger::VerifyLog over the whole log) at each size, per entry, next to
//      a bare SQLite read of the same number of rows of the same size with SHA-256 of each row.
//   3. Incident listing through the use case (ControlPlane::ListIncidents) at each incident count:
//      the first page of 100, a page from the middle, a state filter that matches nothing (it
//      reads every incident), and every page of 1000 in turn; next to a bare SQLite SELECT of the
//      same rows from the same database file.
// The `cost` column is Backout's time divided by the peer's (lower is better), and the last column
// compares each size's per-entry time with the first size's, which shows the growth.
// Usage: growth_bench [--ledger-sizes 1000,100000,1000000] [--incident-sizes 1000,100000]
//                     [--batch 1000] [--window 10000]
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/records.h"
#include "ledger/checkpoint.h"
#include "ledger/verify.h"
#include "server/control_plane_server.h"
#include "store/store.h"
#include "store/system_clock.h"
#include "support/temp_dir.h"

namespace {

using namespace backout;
using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

struct Options {
  std::vector<int64_t> ledger_sizes = {1000, 100000, 1000000};
  std::vector<int64_t> incident_sizes = {1000, 100000};
  int64_t batch = 1000;
  int64_t window = 10000;
};

std::vector<int64_t> ParseSizes(const std::string& text) {
  std::vector<int64_t> sizes;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) sizes.push_back(std::atoll(item.c_str()));
  }
  std::ranges::sort(sizes);
  return sizes;
}

void Fail(const std::string& what, const core::Error& error) {
  std::fprintf(stderr, "growth_bench: %s failed: %s\n", what.c_str(), error.message.c_str());
  std::exit(1);
}

double Micros(Seconds elapsed) { return elapsed.count() * 1e6; }

// Times `body` `runs` times and returns the median in seconds.
double MedianSeconds(int runs, const std::function<void()>& body) {
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    body();
    samples.push_back(Seconds(Clock::now() - start).count());
  }
  std::ranges::sort(samples);
  return samples[samples.size() / 2];
}

void PrintRow(const std::string& name, double ours, double peer, const std::string& unit,
              const std::string& note) {
  fmt::print("  {:<54} {:>11.2f} {:>11.2f} {:<6} {:>6.2f}  {}\n", name, ours, peer, unit,
             peer > 0 ? ours / peer : 0.0, note);
}

void PrintHeader(const std::string& title) {
  fmt::print("{}\n  {:<54} {:>11} {:>11} {:<6} {:>6}\n", title, "", "backout", "peer", "unit",
             "cost");
}

std::string Payload(int64_t i) { return fmt::format("{:0>180}", i); }

// ---- A bare SQLite table as the peer ------------------------------------------------------------

class BareTable {
 public:
  explicit BareTable(const std::filesystem::path& path) {
    sqlite3_open(path.c_str(), &db_);
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL");
    Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    sqlite3_prepare_v2(db_, "INSERT INTO t (body) VALUES (?)", -1, &insert_, nullptr);
  }
  ~BareTable() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }

  void InsertBatch(int64_t count, const std::string& body) {
    Exec("BEGIN IMMEDIATE");
    for (int64_t i = 0; i < count; ++i) {
      sqlite3_bind_text(insert_, 1, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
      sqlite3_step(insert_);
      sqlite3_reset(insert_);
    }
    Exec("COMMIT");
  }

  // Reads every row in id order and hashes each with SHA-256, as a verifier must at least do.
  void ReadAndHashAll() {
    sqlite3_stmt* select = nullptr;
    sqlite3_prepare_v2(db_, "SELECT id, body FROM t ORDER BY id", -1, &select, nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    unsigned char sink = 0;
    while (sqlite3_step(select) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(select, 1);
      const int size = sqlite3_column_bytes(select, 1);
      EVP_Digest(text, static_cast<size_t>(size), digest, &length, EVP_sha256(), nullptr);
      sink ^= digest[0];
    }
    sqlite3_finalize(select);
    if (sink == 0x5a) std::fputc(' ', stderr);
  }

 private:
  void Exec(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// ---- 1 and 2: ledger append and verification ----------------------------------------------------

void LedgerGrowth(const Options& options, const std::filesystem::path& folder) {
  store::SystemClock clock;
  auto signer = ledger::Signer::LoadOrCreate(folder / "bench-key.pem");
  if (!signer) Fail("ledger key", signer.error());
  auto db = store::OpenStore("sqlite:" + (folder / "ledger.db").string(),
                             {.clock = &clock, .signer = *signer, .sqlite_synchronous = "FULL"});
  if (!db) Fail("opening the store", db.error());
  BareTable bare(folder / "bare.db");

  PrintHeader(
      fmt::format("ledger growth, batches of {} entries, SQLite synchronous FULL:", options.batch));
  const auto run_start = Clock::now();
  auto count = (*db)->EntryCount();
  if (!count) Fail("counting entries", count.error());
  int64_t size = static_cast<int64_t>(*count);
  int64_t bare_size = 0;
  double entry_bytes = 0;
  double first_append = 0;
  double first_verify = 0;

  for (const int64_t target : options.ledger_sizes) {
    // Append up to the target; time the last `window` entries, in whole batches.
    const int64_t window_start = std::max(size, target - std::min(target, options.window));
    Seconds window_time{0};
    int64_t window_entries = 0;
    while (size < target) {
      const int64_t count_now = std::min(options.batch, target - size);
      const auto start = Clock::now();
      auto written = (*db)->Write([&](store::Transaction& tx) -> core::Result<void> {
        for (int64_t i = 0; i < count_now; ++i) {
          auto entry = tx.AppendLedger({.actor = "bench",
                                        .action = "bench.appended",
                                        .subject = fmt::format("bench/{}", size + i),
                                        .change = {{"payload", Payload(size + i)}}});
          if (!entry) return std::unexpected(entry.error());
        }
        return {};
      });
      if (!written) Fail("appending", written.error());
      if (size >= window_start) {
        window_time += Clock::now() - start;
        window_entries += count_now;
      }
      size += count_now;
    }
    if (entry_bytes == 0) {
      auto rows = (*db)->ReadEntries(static_cast<uint64_t>(size) - 1, 1);
      if (!rows || rows->empty()) Fail("reading an entry", rows.error());
      entry_bytes = static_cast<double>(rows->front().encoded.size());
    }

    // The bare table, in the same batches, to the same size.
    const std::string body(static_cast<size_t>(entry_bytes), 'x');
    Seconds bare_window{0};
    int64_t bare_entries = 0;
    while (bare_size < target) {
      const int64_t count_now = std::min(options.batch, target - bare_size);
      const auto start = Clock::now();
      bare.InsertBatch(count_now, body);
      if (bare_size >= window_start) {
        bare_window += Clock::now() - start;
        bare_entries += count_now;
      }
      bare_size += count_now;
    }

    const double append_us = Micros(window_time) / static_cast<double>(window_entries);
    const double bare_us = Micros(bare_window) / static_cast<double>(bare_entries);
    if (first_append == 0) first_append = append_us;

    // Verification of the whole log.
    const auto verify_start = Clock::now();
    auto report = ledger::VerifyLog(**db, {});
    const Seconds verify_time = Clock::now() - verify_start;
    if (!report) Fail("verifying", report.error());
    const auto read_start = Clock::now();
    bare.ReadAndHashAll();
    const Seconds read_time = Clock::now() - read_start;
    const double verify_us = Micros(verify_time) / static_cast<double>(report->entries);
    const double read_us = Micros(read_time) / static_cast<double>(bare_size);
    if (first_verify == 0) first_verify = verify_us;

    PrintRow(fmt::format("append per entry at {} entries (last {})", target, window_entries),
             append_us, bare_us, "us",
             fmt::format("{:.2f}x the first size", append_us / first_append));
    PrintRow(fmt::format("verify per entry at {} entries ({:.2f} s)", target, verify_time.count()),
             verify_us, read_us, "us",
             fmt::format("{:.2f}x the first size", verify_us / first_verify));
  }
  std::error_code ignored;
  fmt::print(
      "  ({:.0f}-byte entries; database {:.1f} MB; peer: bare SQLite insert / read + "
      "SHA-256; ledger part took {:.1f} s)\n",
      entry_bytes,
      static_cast<double>(std::filesystem::file_size(folder / "ledger.db", ignored)) / 1e6,
      Seconds(Clock::now() - run_start).count());
}

// ---- 3: incident listing ------------------------------------------------------------------------

constexpr char kLead[] = "lead-1";

std::unique_ptr<server::ControlPlaneServer> StartServer(const std::filesystem::path& folder,
                                                        store::SystemClock& clock) {
  const std::string config = fmt::format(
      "listen: 127.0.0.1:0\n"
      "data_dir: {0}/data\n"
      "users:\n"
      "  - {{name: {1}, roles: [engineering-lead]}}\n"
      "services:\n"
      "  - name: checkout\n"
      "    provider: {{kind: command, run: ['/bin/true']}}\n",
      folder.string(), kLead);
  std::FILE* file = std::fopen((folder / "backout.yaml").c_str(), "w");
  std::fputs(config.c_str(), file);
  std::fclose(file);
  server::ServeOptions options;
  options.config_path = folder / "backout.yaml";
  options.workers = 0;
  auto server = server::ControlPlaneServer::Start(options, clock);
  if (!server) Fail("starting the server", server.error());
  return *std::move(server);
}

std::string ReadToken(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return "";
  char buffer[256] = {};
  const size_t read = std::fread(buffer, 1, sizeof buffer - 1, file);
  std::fclose(file);
  std::string token(buffer, read);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

// The bare SQLite peer: the same rows selected from the same file on a second connection.
class BareObjects {
 public:
  explicit BareObjects(const std::filesystem::path& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_prepare_v2(
        db_,
        "SELECT id, body FROM objects WHERE kind = 'incident' AND id > ? ORDER BY id "
        "LIMIT ?",
        -1, &select_, nullptr);
  }
  ~BareObjects() {
    sqlite3_finalize(select_);
    sqlite3_close(db_);
  }

  // Reads up to `limit` incident rows after `after`; returns the last id read, or "" for none.
  // Adds the bodies' sizes to `bytes`, so the reads cannot be optimized away.
  std::string Page(const std::string& after, int limit, size_t& bytes) {
    sqlite3_bind_text(select_, 1, after.data(), static_cast<int>(after.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(select_, 2, limit);
    std::string last;
    while (sqlite3_step(select_) == SQLITE_ROW) {
      bytes += static_cast<size_t>(sqlite3_column_bytes(select_, 1));
      last = reinterpret_cast<const char*>(sqlite3_column_text(select_, 0));
    }
    sqlite3_reset(select_);
    return last;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
};

void IncidentGrowth(const Options& options, const std::filesystem::path& folder) {
  store::SystemClock clock;
  auto server = StartServer(folder, clock);
  app::ControlPlane& plane = server->plane();

  auto admin = plane.Authenticate(ReadToken(folder / "data" / "admin.token"));
  if (!admin) Fail("authenticating the admin", admin.error());
  auto created = plane.CreateUser(*admin, {.name = kLead, .roles = {core::Role::kEngineeringLead}});
  if (!created) Fail("creating the lead", created.error());
  auto lead = plane.Authenticate(created->token);
  if (!lead) Fail("authenticating the lead", lead.error());

  // One incident through the use case, then copies of its stored body under new ids.
  auto opened = plane.OpenIncident(
      *lead, {.service = "checkout", .severity = core::Severity::kSev2, .title = "growth bench"});
  if (!opened) Fail("opening the template incident", opened.error());
  nlohmann::json template_body = nlohmann::json(*opened);

  PrintHeader("incident listing through ControlPlane::ListIncidents, SQLite:");
  BareObjects bare(folder / "data" / "backout.db");
  int64_t count = 1;
  double first_walk = 0;
  size_t bytes = 0;
  for (const int64_t target : options.incident_sizes) {
    const auto fill_start = Clock::now();
    while (count < target) {
      const int64_t count_now = std::min<int64_t>(1000, target - count);
      auto written = server->store().Write([&](store::Transaction& tx) -> core::Result<void> {
        for (int64_t i = 0; i < count_now; ++i) {
          const std::string id = fmt::format("INC-{}", count + 1 + i);
          store::Object object{.kind = app::kIncidentKind, .id = id, .service = "checkout"};
          object.body = template_body;
          object.body["id"] = id;
          if (auto put = tx.Put(object); !put) return std::unexpected(put.error());
        }
        return {};
      });
      if (!written) Fail("inserting incidents", written.error());
      count += count_now;
    }
    const double fill_seconds = Seconds(Clock::now() - fill_start).count();

    auto list = [&](const app::IncidentFilter& filter, const app::ListOptions& list_options) {
      auto page = plane.ListIncidents(*lead, filter, list_options);
      if (!page) Fail("listing incidents", page.error());
      return *std::move(page);
    };
    const std::string middle = fmt::format("INC-{}", target / 2);

    const double first_ours = MedianSeconds(21, [&] { list({}, {.limit = 100}); });
    const double first_bare = MedianSeconds(21, [&] { bare.Page("", 100, bytes); });
    const double middle_ours =
        MedianSeconds(21, [&] { list({}, {.limit = 100, .after = middle}); });
    const double middle_bare = MedianSeconds(21, [&] { bare.Page(middle, 100, bytes); });
    const int runs = target > 10000 ? 3 : 11;
    const double filtered_ours =
        MedianSeconds(runs, [&] { list({.state = core::IncidentState::kClosed}, {.limit = 100}); });
    const double filtered_bare = MedianSeconds(runs, [&] { bare.Page("", 1 << 30, bytes); });
    int64_t walked = 0;
    const double walk_ours = MedianSeconds(runs, [&] {
      walked = 0;
      app::ListOptions page_options{.limit = 1000};
      while (true) {
        auto page = list({}, page_options);
        walked += static_cast<int64_t>(page.items.size());
        if (page.next_after.empty()) break;
        page_options.after = page.next_after;
      }
    });
    const double walk_bare = MedianSeconds(runs, [&] {
      for (std::string after = bare.Page("", 1000, bytes); !after.empty();) {
        after = bare.Page(after, 1000, bytes);
      }
    });
    if (walked != target) {
      std::fprintf(stderr, "growth_bench: walked %lld incidents, expected %lld\n",
                   static_cast<long long>(walked), static_cast<long long>(target));
      std::exit(1);
    }
    const double walk_us = walk_ours * 1e6 / static_cast<double>(target);
    if (first_walk == 0) first_walk = walk_us;

    fmt::print("  at {} incidents (inserted in {:.1f} s):\n", target, fill_seconds);
    PrintRow("first page of 100", first_ours * 1e3, first_bare * 1e3, "ms", "");
    PrintRow(fmt::format("page of 100 after {}", middle), middle_ours * 1e3, middle_bare * 1e3,
             "ms", "");
    PrintRow("state filter matching none (reads all)", filtered_ours * 1e3, filtered_bare * 1e3,
             "ms", "");
    PrintRow("every page of 1000, per incident", walk_us, walk_bare * 1e6 / target, "us",
             fmt::format("{:.2f}x the first size", walk_us / first_walk));
  }
  fmt::print("  (peer: the same rows by a bare SQLite SELECT on the same file; {} KB read)\n",
             bytes / 1024);
  server->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--ledger-sizes") options.ledger_sizes = ParseSizes(value);
    if (flag == "--incident-sizes") options.incident_sizes = ParseSizes(value);
    if (flag == "--batch") options.batch = std::max<int64_t>(1, std::atoll(value.c_str()));
    if (flag == "--window") options.window = std::max<int64_t>(1, std::atoll(value.c_str()));
  }
  spdlog::set_level(spdlog::level::warn);
  {
    testing::TempDir folder;
    LedgerGrowth(options, folder.path());
  }
  {
    testing::TempDir folder;
    IncidentGrowth(options, folder.path());
  }
  return 0;
}
