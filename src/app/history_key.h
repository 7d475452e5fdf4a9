#pragma once

#include <string>
#include <string_view>

#include "providers/provider.h"

namespace backout::app {

// The key under which reconciliation stores one entry of a tool's history, so a later run that
// reads the entry again skips it: the service and a digest of what the tool recorded about the
// entry. A switch of a release folder's `current` link, inferred from the link alone, has a key
// of its own. A `touch` of the same release's marker within the file system's clock tick gives an
// entry with the same version and time, and that entry must not hide the switch.
// Returns whether `entry` is a switch of `current` that the provider inferred from the link alone,
// not a line of the tool's own log.
bool InferredFromLink(const providers::HistoryEntry& entry);

std::string HistoryEntryKey(std::string_view service, const providers::HistoryEntry& entry);

}  // namespace backout::app
