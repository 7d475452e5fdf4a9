#include "app/history_key.h"

#include <fmt/format.h>

#include "core/time.h"
#include "ledger/hash.h"

namespace backout::app {

bool InferredFromLink(const providers::HistoryEntry& entry) {
  return entry.details.is_object() && entry.details.value("discovered", false);
}

std::string HistoryEntryKey(std::string_view service, const providers::HistoryEntry& entry) {
  const std::string time = core::FormatTime(entry.time);
  const std::string_view kind = providers::HistoryKindName(entry.kind);
  // Keys stored before link switches had a key of their own stay valid: only an inferred switch
  // adds a line to the digested text.
  const std::string digest =
      InferredFromLink(entry)
          ? ledger::ToHex(ledger::Sha256(
                {entry.version, "\n", time, "\n", entry.actor, "\n", kind, "\n", "link"}))
          : ledger::ToHex(
                ledger::Sha256({entry.version, "\n", time, "\n", entry.actor, "\n", kind}));
  return fmt::format("{}/{}", service, digest.substr(0, 32));
}

}  // namespace backout::app
