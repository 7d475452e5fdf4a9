#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "store/store.h"

namespace backout::evidence {

// Columns of the population, in CSV order.
inline constexpr const char* kPopulationColumns[] = {
    "type",         "id",         "incident",   "service",        "environment", "source",
    "from_version", "to_version", "time",       "finished_at",    "decider",     "executor",
    "emergency",    "outcome",    "validation", "external_ticket"};

// Lists every change and every rollback of the period [from, to): changes by deployment time,
// recorded rollbacks by request time, and rollbacks that reconciliation discovered in a tool's
// history (stored kind "discovered_rollback") by the tool's time. Each row is an object with the
// kPopulationColumns keys, all strings, sorted by time. `type` is "change", "rollback" or
// "discovered_rollback"; `source` is "recorded" or "discovered" (a change reconciliation found is
// a discovered change). A change's decider is its approver and its executor its deployer. A
// break-glass rollback's decider is the lead who approved it afterwards, or empty. A discovered
// rollback has no decider, its executor is the tool's actor, and its validation is the latest
// finding of the incident it was linked to, or "none".
core::Result<nlohmann::json> BuildPopulation(store::Store& store, std::optional<core::Time> from,
                                             std::optional<core::Time> to);

// Renders population rows as CSV (RFC 4180): a header line, then one line per row, CRLF endings.
std::string PopulationCsv(const nlohmann::json& rows);

}  // namespace backout::evidence
