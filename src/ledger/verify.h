#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ledger/checkpoint.h"
#include "ledger/hash.h"

namespace backout::ledger {

// One stored row of the log: the encoded entry and the leaf hash recorded beside it.
struct StoredEntry {
  uint64_t sequence = 0;
  std::string encoded;
  Hash leaf_hash{};
};

// Read access to a stored log. The store implements it; verification needs nothing else.
class LogReader {
 public:
  virtual ~LogReader() = default;
  virtual core::Result<uint64_t> EntryCount() = 0;
  // Entries with sequence in [from, from + count), in order. May return fewer past the end.
  virtual core::Result<std::vector<StoredEntry>> ReadEntries(uint64_t from, uint64_t count) = 0;
  // Every stored checkpoint, in the order they were written.
  virtual core::Result<std::vector<Checkpoint>> ReadCheckpoints() = 0;
};

struct VerifyOptions {
  // When set, the log's first key must be this key; otherwise the key the log introduces itself
  // is trusted, which catches edits but not a wholesale key replacement.
  std::optional<PublicKey> trusted_key;
  // A checkpoint exported earlier; the log must extend it (consistency proof).
  std::optional<Checkpoint> exported_checkpoint;
};

struct VerifyReport {
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  Hash root{};
  std::vector<std::string> key_ids;  // keys in force, oldest first
};

// Recomputes every leaf hash and the tree, checks sequence numbers, change digests, every
// checkpoint root and signature, and key rotations. On failure the error (kCorruption) names the
// first bad position with the expected and the actual digest.
core::Result<VerifyReport> VerifyLog(LogReader& reader, const VerifyOptions& options);

}  // namespace backout::ledger
