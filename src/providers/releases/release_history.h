#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "providers/provider.h"
#include "providers/releases/release_tree.h"

namespace backout::providers::releases {

// Reconstructs the deployments and rollbacks of a deploy root at or after `since`, oldest first.
//
// - Each revisions.log line becomes an entry. A line without a time takes its release's marker
//   time (deploy lines) or, failing that, the time of the line before it, a lower bound that
//   `details.time_source` states.
// - Each complete release that no deploy line names becomes a deploy at its marker's
//   modification time.
// - When neither explains where `current` points (the log's last line names another release, or
//   there is no log and the link last changed after the live release's marker appeared), the
//   latest switch becomes an entry at the link's status change time with `details.discovered`
//   set: a rollback when a release newer than the live one was complete at the switch (named in
//   `details.newer_release`), a deploy otherwise. A relative link that resolves to a release
//   counts like an absolute one, with `details.link_relative` set.
// - Only a link that ReadCurrent reports live adds an entry. A link to a release without its
//   marker, a dangling link or one outside the release folders is a problem, not a switch.
//
// Only the latest switch of `current` leaves a trace in the file system, so earlier switches
// that revisions.log does not record are missing.
core::Result<std::vector<HistoryEntry>> ReadReleaseHistory(const ReleaseTree& tree,
                                                           core::Time since);

// Describes whether revisions.log agrees with `current`: {"present": false} without a log, else
// present, in_sync and last_logged_version.
nlohmann::json DescribeLogSync(const ReleaseTree& tree, const CurrentLink& current);

}  // namespace backout::providers::releases
