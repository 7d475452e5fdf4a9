#pragma once

// Helpers shared by the detection use cases (signals.cc, signal_correlation.cc,
// detection_rules.cc). Each works inside the caller's transaction.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "app/signals.h"
#include "core/domain.h"
#include "core/error.h"
#include "store/store.h"

namespace backout::app::signal_internal {

// Signals a signal_correlation job records per write transaction. Each transaction writes every
// incident it touches once, so an alert storm costs one incident write per batch, not one per
// signal, and a transaction that fails or conflicts redoes at most this many signals.
inline constexpr size_t kCorrelationBatchSize = 200;

// Every recorded change of `service`, in id order.
core::Result<std::vector<core::Change>> LoadServiceChanges(store::Transaction& tx,
                                                           const std::string& service);

// Enqueues one signal_correlation job for `signal_ids` and returns its id.
core::Result<std::string> EnqueueCorrelation(store::Transaction& tx,
                                             const std::vector<std::string>& signal_ids,
                                             core::Time now);

// Maps a signal severity to an incident severity: critical and page are sev1, error and major
// sev2, info sev4, anything else sev3. sev1 to sev4 map to themselves.
core::Severity IncidentSeverity(std::string_view signal_severity);

std::string SignalSubject(std::string_view id);

}  // namespace backout::app::signal_internal
