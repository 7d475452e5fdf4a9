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
// VerifyLog calls it from one thread. Errors are passed through to VerifyLog's caller unchanged.
class LogReader {
 public:
  virtual ~LogReader() = default;
  // Number of entries in the log, which is the tree size that verification expects.
  virtual core::Result<uint64_t> EntryCount() = 0;
  // Stored rows with sequence in [from, from + count), ordered by sequence, exactly as stored:
  // the verifier reports a gap or a repeated sequence, so do not repair them. May return fewer
  // rows past the end. VerifyLog requests at most 10 000 rows per call.
  virtual core::Result<std::vector<StoredEntry>> ReadEntries(uint64_t from, uint64_t count) = 0;
  // Every stored checkpoint, in the order they were written.
  virtual core::Result<std::vector<Checkpoint>> ReadCheckpoints() = 0;
};

struct VerifyOptions {
  // When set, the key introduced by entry 0 must be this key. Otherwise the key the log
  // introduces itself is trusted, which catches edits but not a wholesale key replacement.
  // A rotated-in key does not qualify, because whoever rewrites a log can rotate to any key.
  std::optional<PublicKey> trusted_key;
  // A checkpoint exported earlier, which the log must extend. It must be signed by a key the log
  // introduced before its tree size, or by the trusted key. The root of the log's first
  // tree_size entries must equal its root, and a consistency proof from it to the whole log must
  // verify. The verifier then keeps all leaf hashes in memory (32 bytes per entry).
  std::optional<Checkpoint> exported_checkpoint;
};

struct VerifyReport {
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  Hash root{};                       // root of the whole log
  std::vector<std::string> key_ids;  // every key the log introduced or rotated in, oldest first
};

// Verifies a whole log, streaming its entries in order:
//   - each row's sequence equals its position, its stored leaf hash equals SHA-256(0x00 || bytes),
//     and its bytes decode as a canonical entry recording that sequence and its change digest;
//   - entry 0 is "ledger.key_introduced", no later entry is, and each "ledger.key_rotated" entry
//     names the key in force as previous_key_id and carries that key's signature over the new
//     PEM;
//   - checkpoint sizes never decrease and never exceed the log. A checkpoint of tree size N is
//     signed by the key in force after entries 0..N-1, which is the key of the last key entry
//     before N, and its root equals the recomputed root of those entries;
//   - options.trusted_key and options.exported_checkpoint as described above.
// On the first failure, in entry order, returns kCorruption naming the entry (or, for a root
// mismatch, the range of entries after the last matching checkpoint) with the expected and the
// actual value. Memory stays at one chunk of entries plus O(log n) hashes, except for the leaf
// hashes kept for an exported checkpoint.
core::Result<VerifyReport> VerifyLog(LogReader& reader, const VerifyOptions& options);

}  // namespace backout::ledger
