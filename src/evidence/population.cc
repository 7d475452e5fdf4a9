#include "evidence/population.h"

#include <map>

#include <fmt/format.h>

#include "core/domain.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

bool InPeriod(core::Time time, std::optional<core::Time> from, std::optional<core::Time> to) {
  return (!from || time >= *from) && (!to || time < *to);
}

std::string OptionalTime(const std::optional<core::Time>& time) {
  return time ? core::FormatTime(*time) : std::string();
}

json ChangeRow(const core::Change& change) {
  return json{{"type", "change"},
              {"id", change.id},
              {"incident", ""},
              {"service", change.service},
              {"environment", change.environment},
              {"source", core::ChangeSourceName(change.source)},
              {"from_version", change.previous_version},
              {"to_version", change.version},
              {"time", core::FormatTime(change.time)},
              {"finished_at", ""},
              {"decider", change.approver},
              {"executor", change.deployer},
              {"emergency", "false"},
              {"outcome", "deployed"},
              {"validation", core::ChangeValidationName(change.validated)},
              {"external_ticket", change.external_ticket}};
}

json RollbackRow(const core::Incident& incident, const core::Rollback& rollback,
                 const std::string& from_version) {
  std::string decider = rollback.approver;
  if (rollback.emergency) {
    // The approval of this rollback is the first retroactive one at or after its request by a lead
    // other than its executor, as the closure check counts it. A later approval belongs to a later
    // break-glass rollback.
    for (const core::Decision& decision : incident.decisions) {
      if (decision.retroactive && decision.kind == core::DecisionKind::kGo &&
          decision.time >= rollback.requested_at && decision.decider != rollback.executor) {
        decider = decision.decider;
        break;
      }
    }
  }
  std::string validation = "none";
  for (const core::Validation& item : incident.validations) {
    if (item.rollback_job_id == rollback.job_id && item.finding) {
      validation = core::ValidationFindingName(*item.finding);
    }
  }
  return json{
      {"type", "rollback"},
      {"id", fmt::format("{}/rollback/{}", incident.id, rollback.job_id)},
      {"incident", incident.id},
      {"service", incident.service},
      {"environment", incident.environment},
      {"source", "recorded"},
      {"from_version", from_version},
      {"to_version", rollback.target_version},
      {"time", core::FormatTime(rollback.requested_at)},
      {"finished_at", OptionalTime(rollback.finished_at)},
      {"decider", decider},
      {"executor", rollback.executor},
      {"emergency", rollback.emergency ? "true" : "false"},
      {"outcome", rollback.outcome ? std::string(core::RollbackOutcomeName(*rollback.outcome))
                                   : std::string("running")},
      {"validation", validation},
      {"external_ticket", incident.external_ticket}};
}

// A rollback that reconciliation found in a tool's history, done outside Backout. It has no
// decider, because nobody approved it through Backout; the executor is the tool's actor. Its
// validation is that of the incident it was linked to, when that incident recorded one.
json DiscoveredRollbackRow(const json& body, const std::map<std::string, std::string>& findings) {
  auto text = [&](const char* key) {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string incident = text("incident");
  auto finding = findings.find(incident);
  return json{{"type", "discovered_rollback"},
              {"id", text("id")},
              {"incident", incident},
              {"service", text("service")},
              {"environment", text("environment")},
              {"source", "discovered"},
              {"from_version", text("from_version")},
              {"to_version", text("version")},
              {"time", text("time")},
              {"finished_at", text("time")},
              {"decider", ""},
              {"executor", text("actor")},
              {"emergency", "false"},
              {"outcome", "rolled_back"},
              {"validation", finding == findings.end() ? "none" : finding->second},
              {"external_ticket", ""}};
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

core::Result<json> BuildPopulation(store::Store& store, std::optional<core::Time> from,
                                   std::optional<core::Time> to) {
  json rows = json::array();
  std::vector<json> discovered;
  std::map<std::string, std::string> findings;  // incident id -> latest validation finding
  auto read = store.Read([&](store::Transaction& tx) -> core::Result<void> {
    for (const char* kind : {"change", "incident", "discovered_rollback"}) {
      std::string after;
      while (true) {
        auto page = tx.List(store::ListQuery{.kind = kind, .after_id = after, .limit = 500});
        if (!page) return std::unexpected(page.error());
        for (const store::Object& object : *page) {
          if (std::string_view(kind) == "discovered_rollback") {
            discovered.push_back(object.body);
            continue;
          }
          if (std::string_view(kind) == "change") {
            auto change = core::FromJson<core::Change>(object.body);
            if (!change) {
              return core::MakeError(core::ErrorCode::kCorruption,
                                     "stored change {} cannot be read: {}", object.id,
                                     change.error().message);
            }
            if (InPeriod(change->time, from, to)) rows.push_back(ChangeRow(*change));
            continue;
          }
          auto incident = core::FromJson<core::Incident>(object.body);
          if (!incident) {
            return core::MakeError(core::ErrorCode::kCorruption,
                                   "stored incident {} cannot be read: {}", object.id,
                                   incident.error().message);
          }
          for (const core::Validation& validation : incident->validations) {
            if (validation.finding) {
              findings[incident->id] = core::ValidationFindingName(*validation.finding);
            }
          }
          auto jobs = tx.ListJobs(fmt::format("incident/{}", incident->id));
          if (!jobs) return std::unexpected(jobs.error());
          for (const core::Rollback& rollback : incident->rollbacks) {
            if (!InPeriod(rollback.requested_at, from, to)) continue;
            std::string from_version;
            for (const store::Job& job : *jobs) {
              if (std::to_string(job.id) != rollback.job_id) continue;
              const json result = job.payload.value("result", json::object());
              if (result.is_object()) from_version = result.value("from_version", "");
            }
            rows.push_back(RollbackRow(*incident, rollback, from_version));
          }
        }
        if (page->size() < 500) break;
        after = page->back().id;
      }
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());

  // Discovered rollbacks carry the tool's time; one without a readable time is listed anyway
  // when no period is given, so an auditor still finds it.
  for (const json& body : discovered) {
    auto time = core::ParseTime(
        body.value("time", json()).is_string() ? body["time"].get<std::string>() : std::string());
    if (time ? !InPeriod(*time, from, to) : (from || to)) continue;
    rows.push_back(DiscoveredRollbackRow(body, findings));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a["time"].get<std::string>() < b["time"].get<std::string>();
  });
  return rows;
}

std::string PopulationCsv(const json& rows) {
  std::string out;
  bool first = true;
  for (const char* column : kPopulationColumns) {
    out += first ? "" : ",";
    out += column;
    first = false;
  }
  out += "\r\n";
  for (const json& row : rows) {
    first = true;
    for (const char* column : kPopulationColumns) {
      out += first ? "" : ",";
      out += CsvField(row.value(column, ""));
      first = false;
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace backout::evidence
