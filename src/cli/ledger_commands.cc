#include "cli/ledger_commands.h"

#include "cli/cli.h"
#include "cli/client_command.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ledger/checkpoint.h"
#include "ledger/hash.h"
#include "ledger/merkle.h"
#include "ledger/verify.h"
#include "store/store.h"
#include "store/system_clock.h"

namespace backout::cli {
namespace {

// Entries read per query while collecting leaf hashes for proofs.
constexpr uint64_t kReadChunk = 10000;

// The checkpoint signing key in the data folder; `backout serve` uses the same name.
constexpr char kLedgerKeyFile[] = "ledger.key";

struct LedgerFlags {
  std::string database;
  std::string public_key_file;
  std::string checkpoint_file;
  std::string out_file;
  std::string public_key_out_file;
  std::string data_dir;
  uint64_t entry = 0;
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t sample_entries = 1000;
};

int Fail(const core::Error& error) {
  fmt::print(stderr, "error: {}\n", error.message);
  return kExitFailed;
}

// Like Fail for an input the command cannot use, such as an option's file that is too large.
int FailUsage(const core::Error& error) {
  fmt::print(stderr, "error: {}\n", error.message);
  return kExitUsage;
}

core::Result<void> WriteFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot write '{}': {}", path,
                           std::strerror(errno));
  }
  return {};
}

// Refuses a SQLite path that does not exist, so a mistyped --database is reported instead of
// silently creating an empty database.
core::Result<void> CheckDatabaseExists(const std::string& url) {
  constexpr std::string_view kSqlitePrefix = "sqlite:";
  if (!url.starts_with(kSqlitePrefix)) return {};
  const std::string path = url.substr(kSqlitePrefix.size());
  if (!std::filesystem::is_regular_file(path)) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "no database at '{}': check --database (sqlite:PATH to an existing "
                           "file, or postgresql://…)",
                           path);
  }
  return {};
}

core::Result<std::unique_ptr<store::Store>> OpenExisting(const std::string& url,
                                                         const core::Clock& clock) {
  if (auto exists = CheckDatabaseExists(url); !exists) return std::unexpected(exists.error());
  store::StoreOptions options;
  options.clock = &clock;
  options.migrate = false;
  auto opened = store::OpenStore(url, options);
  if (!opened) return std::unexpected(opened.error().WithContext("cannot open " + url));
  return opened;
}

core::Result<std::vector<ledger::Hash>> LoadLeafHashes(store::Store& db, uint64_t count) {
  std::vector<ledger::Hash> leaves;
  leaves.reserve(count);
  while (leaves.size() < count) {
    auto chunk = db.ReadEntries(leaves.size(), std::min(kReadChunk, count - leaves.size()));
    if (!chunk) return std::unexpected(chunk.error());
    if (chunk->empty()) break;
    for (const auto& row : *chunk) leaves.push_back(ledger::LeafHash(row.encoded));
  }
  if (leaves.size() != count) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "the ledger ends at {} entries, expected {}", leaves.size(), count);
  }
  return leaves;
}

nlohmann::json HexList(const std::vector<ledger::Hash>& hashes) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& hash : hashes) list.push_back(ledger::ToHex(hash));
  return list;
}

// A consistent view of a log that a server may be appending to. Checkpoints are read before the
// entry count: every checkpoint is committed with its entries, so none read first can sign more
// entries than the count read after it unless entries were removed. Entries past the newest
// checkpoint get one more look at the checkpoints, since a writer may have committed meanwhile.
// Entries still unsigned then are verified like the others and reported: a running server signs
// them within its ledger.checkpoint_interval, and the next start signs what a crash left.
class SnapshotLogReader final : public ledger::LogReader {
 public:
  static core::Result<std::unique_ptr<SnapshotLogReader>> Create(ledger::LogReader& source) {
    auto first = source.ReadCheckpoints();
    if (!first) return std::unexpected(first.error());
    auto count = source.EntryCount();
    if (!count) return std::unexpected(count.error());

    std::vector<ledger::Checkpoint> checkpoints = std::move(*first);
    if (MaxSize(checkpoints) < *count) {
      auto again = source.ReadCheckpoints();
      if (!again) return std::unexpected(again.error());
      // Keep what the first read saw, even beyond the count (a removed tail), and add the newer
      // checkpoints that fall within the count.
      for (size_t i = checkpoints.size(); i < again->size(); ++i) {
        if ((*again)[i].tree_size <= *count) checkpoints.push_back((*again)[i]);
      }
    }
    return std::unique_ptr<SnapshotLogReader>(
        new SnapshotLogReader(source, *count, std::move(checkpoints)));
  }

  core::Result<uint64_t> EntryCount() override { return count_; }

  core::Result<std::vector<ledger::StoredEntry>> ReadEntries(uint64_t from,
                                                             uint64_t count) override {
    if (from >= count_) return std::vector<ledger::StoredEntry>();
    return source_.ReadEntries(from, std::min(count, count_ - from));
  }

  core::Result<std::vector<ledger::Checkpoint>> ReadCheckpoints() override { return checkpoints_; }

  // The number of entries the newest checkpoint signs.
  uint64_t SignedSize() const { return MaxSize(checkpoints_); }

 private:
  SnapshotLogReader(ledger::LogReader& source, uint64_t count,
                    std::vector<ledger::Checkpoint> checkpoints)
      : source_(source), count_(count), checkpoints_(std::move(checkpoints)) {}

  static uint64_t MaxSize(const std::vector<ledger::Checkpoint>& checkpoints) {
    uint64_t size = 0;
    for (const auto& checkpoint : checkpoints) size = std::max(size, checkpoint.tree_size);
    return size;
  }

  ledger::LogReader& source_;
  uint64_t count_;
  std::vector<ledger::Checkpoint> checkpoints_;
};

int RunVerify(const LedgerFlags& flags) {
  store::SystemClock clock;
  ledger::VerifyOptions options;
  if (!flags.public_key_file.empty()) {
    auto pem = ReadFileUpTo(flags.public_key_file, kMaxKeyFileBytes);
    if (!pem) return FailUsage(pem.error());
    auto key = ledger::PublicKey::FromPem(*pem);
    if (!key) return Fail(key.error().WithContext("--public-key " + flags.public_key_file));
    options.trusted_key = *key;
  }
  if (!flags.checkpoint_file.empty()) {
    auto text = ReadFileUpTo(flags.checkpoint_file, kMaxKeyFileBytes);
    if (!text) return FailUsage(text.error());
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded()) {
      return Fail(core::Error{core::ErrorCode::kInvalidArgument,
                              fmt::format("--checkpoint {}: not valid JSON; pass a file written "
                                          "by `backout ledger checkpoint --out`",
                                          flags.checkpoint_file)});
    }
    auto checkpoint = ledger::Checkpoint::FromJson(json);
    if (!checkpoint)
      return Fail(checkpoint.error().WithContext("--checkpoint " + flags.checkpoint_file));
    options.exported_checkpoint = *checkpoint;
  }

  auto db = OpenExisting(flags.database, clock);
  if (!db) return Fail(db.error());
  auto snapshot = SnapshotLogReader::Create(**db);
  if (!snapshot) {
    fmt::print(stderr, "ledger verification FAILED: {}\n", snapshot.error().message);
    return kExitFailed;
  }
  if ((*snapshot)->EntryCount().value() == 0 &&
      (options.trusted_key || options.exported_checkpoint)) {
    fmt::print(stderr,
               "ledger verification FAILED: the ledger is empty, but --public-key or "
               "--checkpoint says it once had entries\n");
    return kExitFailed;
  }
  auto report = ledger::VerifyLog(**snapshot, options);
  if (!report) {
    fmt::print(stderr, "ledger verification FAILED: {}\n", report.error().message);
    return kExitFailed;
  }
  fmt::print("ledger verified: {} entries, {} checkpoints, root {}\n", report->entries,
             report->checkpoints, ledger::ToHex(report->root));
  if (const uint64_t signed_size = (*snapshot)->SignedSize(); signed_size < report->entries) {
    fmt::print(
        "entries {} to {} are not signed by a checkpoint yet: a running server signs them within "
        "its ledger.checkpoint_interval, and the next start signs what a crash left; if the "
        "server stopped cleanly after writing them, they were added outside Backout\n",
        signed_size, report->entries - 1);
  }
  fmt::print("signing keys, oldest first: {}\n", fmt::join(report->key_ids, ", "));
  if (options.trusted_key) fmt::print("first key matches --public-key\n");
  if (options.exported_checkpoint) {
    fmt::print("log extends the exported checkpoint of {} entries\n",
               options.exported_checkpoint->tree_size);
  }
  return kExitOk;
}

int RunCheckpoint(const LedgerFlags& flags) {
  store::SystemClock clock;
  auto db = OpenExisting(flags.database, clock);
  if (!db) return Fail(db.error());
  auto latest = (*db)->LatestCheckpoint();
  if (!latest) return Fail(latest.error());
  if (!latest->has_value()) {
    return Fail(core::Error{core::ErrorCode::kNotFound,
                            "the ledger has no checkpoint yet: nothing has been recorded"});
  }
  const std::string text = (*latest)->ToJson().dump(2) + "\n";
  if (flags.out_file.empty() || flags.out_file == "-") {
    fmt::print("{}", text);
  } else if (auto written = WriteFile(flags.out_file, text); !written) {
    return Fail(written.error());
  }

  if (!flags.public_key_out_file.empty()) {
    auto checkpoints = (*db)->ReadCheckpoints();
    if (!checkpoints) return Fail(checkpoints.error());
    auto first = (*db)->ReadEntries(0, 1);
    if (!first) return Fail(first.error());
    if (first->empty()) {
      return Fail(core::Error{core::ErrorCode::kNotFound, "the ledger is empty"});
    }
    auto entry = ledger::DecodeEntry(first->front().encoded);
    if (!entry) return Fail(entry.error());
    const auto pem = entry->change.value("public_key", std::string());
    if (auto written = WriteFile(flags.public_key_out_file, pem); !written) {
      return Fail(written.error());
    }
  }
  if (!flags.out_file.empty() && flags.out_file != "-") {
    fmt::print(stderr, "wrote checkpoint of {} entries to {}\n", (*latest)->tree_size,
               flags.out_file);
  }
  return kExitOk;
}

int RunProof(const LedgerFlags& flags) {
  store::SystemClock clock;
  auto db = OpenExisting(flags.database, clock);
  if (!db) return Fail(db.error());
  auto size = (*db)->EntryCount();
  if (!size) return Fail(size.error());
  if (flags.entry >= *size) {
    return Fail(core::Error{core::ErrorCode::kInvalidArgument,
                            fmt::format("--entry {} is out of range: the ledger has {} entries "
                                        "(0 to {})",
                                        flags.entry, *size, *size == 0 ? 0 : *size - 1)});
  }
  auto leaves = LoadLeafHashes(**db, *size);
  if (!leaves) return Fail(leaves.error());
  auto proof = ledger::InclusionProof(flags.entry, *leaves);
  if (!proof) return Fail(proof.error());
  auto row = (*db)->ReadEntries(flags.entry, 1);
  if (!row) return Fail(row.error());

  nlohmann::json out = {{"entry", flags.entry},
                        {"tree_size", *size},
                        {"leaf_hash", ledger::ToHex((*leaves)[flags.entry])},
                        {"encoded", row->empty() ? std::string() : row->front().encoded},
                        {"proof", HexList(*proof)},
                        {"root", ledger::ToHex(ledger::RootOf(*leaves))}};
  fmt::print("{}\n", out.dump(2));
  return kExitOk;
}

int RunConsistency(const LedgerFlags& flags) {
  store::SystemClock clock;
  auto db = OpenExisting(flags.database, clock);
  if (!db) return Fail(db.error());
  auto size = (*db)->EntryCount();
  if (!size) return Fail(size.error());
  if (flags.from > flags.to || flags.to > *size) {
    return Fail(core::Error{core::ErrorCode::kInvalidArgument,
                            fmt::format("--from {} --to {} is not a valid range: need from <= to "
                                        "<= {} (the ledger size)",
                                        flags.from, flags.to, *size)});
  }
  auto leaves = LoadLeafHashes(**db, flags.to);
  if (!leaves) return Fail(leaves.error());
  auto proof = ledger::ConsistencyProof(flags.from, *leaves);
  if (!proof) return Fail(proof.error());
  const std::span<const ledger::Hash> all(*leaves);
  nlohmann::json out = {{"from", flags.from},
                        {"to", flags.to},
                        {"old_root", ledger::ToHex(ledger::RootOf(all.first(flags.from)))},
                        {"new_root", ledger::ToHex(ledger::RootOf(all))},
                        {"proof", HexList(*proof)}};
  fmt::print("{}\n", out.dump(2));
  return kExitOk;
}

// Writes a sample ledger of realistic incident events, so the verifier can be tried before any
// server has run.
int RunSample(const LedgerFlags& flags) {
  store::SystemClock clock;
  std::error_code dir_error;
  std::filesystem::create_directories(flags.data_dir, dir_error);
  if (dir_error) {
    return Fail(core::Error{core::ErrorCode::kInvalidArgument,
                            fmt::format("--data-dir '{}': cannot create the folder: {}; pass a "
                                        "folder for the signing key",
                                        flags.data_dir, dir_error.message())});
  }
  auto signer =
      ledger::Signer::LoadOrCreate(std::filesystem::path(flags.data_dir) / kLedgerKeyFile);
  if (!signer) return Fail(signer.error());
  store::StoreOptions options;
  options.clock = &clock;
  options.signer = *signer;
  auto db = store::OpenStore(flags.database, options);
  if (!db) return Fail(db.error());

  static const char* kActions[] = {"change.recorded",  "incident.opened",   "incident.assessed",
                                   "incident.decided", "rollback.executed", "incident.validated",
                                   "incident.closed"};
  constexpr uint64_t kEntriesPerBatch = 7;
  for (uint64_t written = 0; written < flags.sample_entries;) {
    const uint64_t incident = written / kEntriesPerBatch + 1;
    auto status = (*db)->Write([&](store::Transaction& tx) -> core::Result<void> {
      for (uint64_t i = 0; i < kEntriesPerBatch && written < flags.sample_entries; ++i, ++written) {
        store::LedgerRecord record{
            .actor = i == 3 ? "lead-1" : "sre-1",
            .action = kActions[i],
            .subject = fmt::format("incident/INC-{}", incident),
            .change = {{"service", "checkout"}, {"step", i}, {"version", "v2"}}};
        if (auto appended = tx.AppendLedger(record); !appended) {
          return std::unexpected(appended.error());
        }
      }
      return {};
    });
    if (!status) return Fail(status.error());
  }
  auto count = (*db)->EntryCount();
  if (!count) return Fail(count.error());
  fmt::print("sample ledger at {}: {} entries\n", flags.database, *count);
  return kExitOk;
}

// Introduces a new signing key with a "ledger.key_rotated" entry signed by the current one. Run it
// while the server is stopped: the server keeps the key it loaded at start.
int RunRotateKey(const LedgerFlags& flags) {
  store::SystemClock clock;
  const std::filesystem::path dir(flags.data_dir);
  const auto current_path = dir / kLedgerKeyFile;
  const auto next_path = dir / (std::string(kLedgerKeyFile) + ".next");
  if (!std::filesystem::exists(current_path)) {
    return Fail(core::Error{
        core::ErrorCode::kNotFound,
        fmt::format("no signing key at {}: pass the server's --data-dir", current_path.string())});
  }
  if (auto exists = CheckDatabaseExists(flags.database); !exists) return Fail(exists.error());
  auto current = ledger::Signer::LoadOrCreate(current_path);
  if (!current) return Fail(current.error());

  store::StoreOptions options;
  options.clock = &clock;
  options.signer = *current;
  options.migrate = false;
  auto db = store::OpenStore(flags.database, options);
  if (!db) return Fail(db.error());
  auto count = (*db)->EntryCount();
  if (!count) return Fail(count.error());
  if (*count == 0) {
    return Fail(core::Error{core::ErrorCode::kFailedPrecondition,
                            fmt::format("the ledger at {} is empty: there is no key to rotate; "
                                        "check --database",
                                        flags.database)});
  }

  auto next = ledger::Signer::LoadOrCreate(next_path);
  if (!next) return Fail(next.error());
  if (auto rotated = (*db)->RotateLedgerKey(*next); !rotated) {
    std::error_code ignored;
    std::filesystem::remove(next_path, ignored);
    return Fail(rotated.error());
  }

  // The log now names the new key. Until the rename below, the server would refuse to append with
  // the old file, and the error names both keys, so a crash here is visible and recoverable.
  const auto retired_path =
      dir / fmt::format("{}.retired-{}", kLedgerKeyFile, (*current)->public_key().key_id());
  std::error_code error;
  std::filesystem::rename(current_path, retired_path, error);
  if (!error) std::filesystem::rename(next_path, current_path, error);
  if (error) {
    return Fail(core::Error{core::ErrorCode::kUnavailable,
                            fmt::format("the ledger records the new key {}, but moving {} into "
                                        "place failed: {}; rename it to {} by hand",
                                        (*next)->public_key().key_id(), next_path.string(),
                                        error.message(), current_path.string())});
  }
  fmt::print("rotated the ledger signing key: {} -> {}\nthe old key is kept at {}\n",
             (*current)->public_key().key_id(), (*next)->public_key().key_id(),
             retired_path.string());
  return kExitOk;
}

void AddDatabaseOption(CLI::App* command, LedgerFlags& flags) {
  command
      ->add_option("--database", flags.database,
                   "Database URL: sqlite:PATH or postgresql://USER@HOST:PORT/DB")
      ->envname("BACKOUT_DATABASE")
      ->required();
}

}  // namespace

void AddLedgerCommands(CLI::App& app, int& exit_status) {
  auto flags = std::make_shared<LedgerFlags>();
  auto* ledger_cmd = app.add_subcommand(
      "ledger",
      "Verify, prove and export the tamper-evident ledger, reading the database directly");
  ledger_cmd->require_subcommand(1);

  auto* verify = ledger_cmd->add_subcommand(
      "verify", "Recompute the Merkle tree and check every checkpoint signature");
  AddDatabaseOption(verify, *flags);
  verify
      ->add_option("--public-key", flags->public_key_file,
                   "PEM file of the Ed25519 key the log must start with; obtain it from the "
                   "operator out of band, not from the database being audited")
      ->check(CLI::ExistingFile);
  verify
      ->add_option("--checkpoint", flags->checkpoint_file,
                   "Checkpoint exported earlier; the log must extend it")
      ->check(CLI::ExistingFile);
  verify->callback([flags, &exit_status] { exit_status = RunVerify(*flags); });

  auto* checkpoint = ledger_cmd->add_subcommand(
      "checkpoint",
      "Export the latest stored checkpoint as JSON; a running server signs new entries within "
      "ledger.checkpoint_interval");
  AddDatabaseOption(checkpoint, *flags);
  checkpoint->add_option("--out", flags->out_file, "File to write; standard output when absent");
  checkpoint->add_option("--public-key-out", flags->public_key_out_file,
                         "Also write the log's first public key (PEM) to this file");
  checkpoint->callback([flags, &exit_status] { exit_status = RunCheckpoint(*flags); });

  auto* proof = ledger_cmd->add_subcommand("proof", "Print the inclusion proof of one entry");
  AddDatabaseOption(proof, *flags);
  proof->add_option("--entry", flags->entry, "Sequence number of the entry, from 0")
      ->required()
      ->check(WholeNumberValidator());
  proof->callback([flags, &exit_status] { exit_status = RunProof(*flags); });

  auto* consistency = ledger_cmd->add_subcommand(
      "consistency", "Print the proof that the first TO entries extend the first FROM entries");
  AddDatabaseOption(consistency, *flags);
  consistency->add_option("--from", flags->from, "Size of the older tree, in entries")
      ->required()
      ->check(WholeNumberValidator());
  consistency->add_option("--to", flags->to, "Size of the newer tree, in entries")
      ->required()
      ->check(WholeNumberValidator());
  consistency->callback([flags, &exit_status] {
    // A reversed range is a usage error. A range past the ledger's size is found only once the
    // database is open.
    if (flags->from > flags->to) {
      throw CLI::ValidationError(fmt::format(
          "--from {} is larger than --to {}; the older tree cannot be larger than the newer one",
          flags->from, flags->to));
    }
    exit_status = RunConsistency(*flags);
  });

  auto* sample = ledger_cmd->add_subcommand(
      "sample", "Write a sample ledger of incident events, for trying the verifier");
  AddDatabaseOption(sample, *flags);
  sample->add_option("--entries", flags->sample_entries, "Number of entries to append")
      ->check(CLI::Range(1, 10000000));
  sample->add_option("--data-dir", flags->data_dir, "Folder for the checkpoint signing key")
      ->required();
  sample->callback([flags, &exit_status] { exit_status = RunSample(*flags); });

  auto* rotate = ledger_cmd->add_subcommand(
      "rotate-key",
      "Introduce a new checkpoint signing key, recorded by an entry signed with the old one "
      "(stop the server first)");
  AddDatabaseOption(rotate, *flags);
  rotate->add_option("--data-dir", flags->data_dir, "The server's data folder holding ledger.key")
      ->required();
  rotate->callback([flags, &exit_status] { exit_status = RunRotateKey(*flags); });
}

}  // namespace backout::cli
