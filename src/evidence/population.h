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
// rollbacks by request time. Each row is an object with the kPopulationColumns keys, all strings.
// A change's decider is its approver and its executor its deployer. A break-glass rollback's
// decider is the lead who approved it afterwards, or empty.
core::Result<nlohmann::json> BuildPopulation(store::Store& store, std::optional<core::Time> from,
                                             std::optional<core::Time> to);

// Renders population rows as CSV (RFC 4180): a header line, then one line per row, CRLF endings.
std::string PopulationCsv(const nlohmann::json& rows);

}  // namespace backout::evidence
