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

// Decodes and checks that change_digest matches the change. Errors name the field at fault.
core::Result<Entry> DecodeEntry(std::string_view encoded);

}  // namespace backout::ledger
