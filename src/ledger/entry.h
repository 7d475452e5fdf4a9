#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "ledger/hash.h"

namespace backout::ledger {

// One ledger entry. The encoded form is the canonical JSON object
//   {"action":…,"actor":…,"change":…,"change_digest":"<hex SHA-256 of canonical change>",
//    "sequence":N,"subject":…,"time":"<RFC 3339 UTC, microseconds, Z>"}
// and its leaf hash is SHA-256(0x00 || encoded bytes). docs/ledger.md specifies it for third
// parties.
struct Entry {
  uint64_t sequence = 0;  // position in the log, from 0; equal to the Merkle leaf index
  core::Time time;
  std::string actor;    // user name, or "system"
  std::string action;   // dotted verb, such as "incident.opened"
  std::string subject;  // the object acted on, such as "incident/INC-7"
  nlohmann::json change = nlohmann::json::object();  // what changed, with secrets removed
};

core::Result<std::string> EncodeEntry(const Entry& entry);

// An entry's encoded bytes and their leaf hash.
struct EncodedEntry {
  std::string bytes;
  Hash leaf_hash;
};

// An entry encoded up to the two members that its appender assigns, sequence and time, with the
// leaf hash's SHA-256 state over those bytes. A writer that prepares an entry before its write
// transaction leaves the transaction only the last bytes to encode and hash. Made by
// PrepareEntry.
class PreparedEntry {
 public:
  const std::string& action() const { return action_; }

  // Returns the entry at `sequence` and `time`: the bytes EncodeEntry writes for the same entry,
  // and their leaf hash (RFC 6962, as LeafHash). Fails (kInvalidArgument) when `sequence` is
  // above 2^53 - 1, which canonical JSON cannot keep exact.
  core::Result<EncodedEntry> Encode(uint64_t sequence, core::Time time) const;

 private:
  friend core::Result<PreparedEntry> PrepareEntry(std::string_view actor, std::string_view action,
                                                  std::string_view subject,
                                                  const nlohmann::json& change);
  PreparedEntry() = default;

  std::string action_;
  std::string head_;        // from '{' through "sequence":
  std::string middle_;      // from ,"subject": through "time":
  Sha256Hasher leaf_hash_;  // over 0x00 and head_
};

// Encodes every member of an entry but its sequence and time. Fails as EncodeEntry does for the
// same action and change.
core::Result<PreparedEntry> PrepareEntry(std::string_view actor, std::string_view action,
                                         std::string_view subject, const nlohmann::json& change);

// Decodes and checks that change_digest matches the change. Errors name the field at fault.
core::Result<Entry> DecodeEntry(std::string_view encoded);

}  // namespace backout::ledger
