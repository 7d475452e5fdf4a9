#pragma once

// Helpers shared by the store's implementation files; not part of the module's interface.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/time.h"
#include "store/sql_session.h"
#include "store/store.h"

namespace backout::store {

// Key of the PostgreSQL transaction-level advisory lock that serializes ledger appends across
// processes ("backout" in ASCII, then 1).
inline constexpr int64_t kLedgerLockKey = 0x6261636b6f757401;

// Stored times are integer microseconds since the Unix epoch, UTC.
inline int64_t ToMicros(core::Time time) { return time.time_since_epoch().count(); }
inline core::Time FromMicros(int64_t micros) { return core::Time(core::Duration(micros)); }

std::string HexEncode(std::string_view bytes);
core::Result<std::string> HexDecode(std::string_view hex);

// `url` with any password replaced by "***", for messages and logs.
std::string RedactUrl(std::string_view url);

core::Result<JobState> ParseJobState(std::string_view name);

// The jobs columns JobFromRow reads, in its order.
inline constexpr std::string_view kJobColumns =
    "id, kind, subject, payload, state, attempts, run_after, lease_owner, lease_expires, "
    "fencing_token, last_error";
core::Result<Job> JobFromRow(const SqlRow& row);

// Appends `text` as a JSON string, byte for byte as nlohmann's dump() writes it. Throws
// nlohmann's type_error 316 when `text` is not valid UTF-8.
void AppendJsonString(std::string_view text, std::string& out);
// Serializes a JSON body for storage. Fails (kInvalidArgument) on text that is not valid UTF-8.
core::Result<std::string> DumpJson(const nlohmann::json& value, std::string_view what);
// Parses a stored JSON body. Fails (kCorruption) naming `what` when the text is not JSON.
core::Result<nlohmann::json> ParseStoredJson(std::string_view text, std::string_view what);

// Runs a function when the scope ends, however it ends.
template <typename Function>
class ScopeExit {
 public:
  explicit ScopeExit(Function function) : function_(std::move(function)) {}
  ~ScopeExit() { function_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  Function function_;
};

}  // namespace backout::store
