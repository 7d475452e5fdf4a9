#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/requests.h"
#include "checks/check.h"
#include "core/domain.h"
#include "store/store.h"

// Running a service's `http`, `prometheus` and `manual` checks for the validation job, and the
// records they keep: manual confirmations and the raw Prometheus responses.
namespace backout::app {

inline constexpr char kCheckConfirmationKind[] = "check_confirmation";  // id INC-N/CHECK

// A person's confirmation of a `manual` check (POST /api/v1/incidents/{id}/checks/{name}/confirm).
struct CheckConfirmationRequest {
  bool passed = true;  // false records that the user-level test failed
  std::string note;
  std::optional<NewAttachment> attachment;
};

// What the checks of one validation produced.
struct CheckRun {
  std::vector<core::Observation> observations;
  std::vector<core::MetricSeries> metric_series;
  // Raw query_range bodies by SHA-256 digest, stored as attachment contents.
  std::vector<std::pair<std::string, std::string>> response_bodies;
};

// Runs `check`, whose kind the checks module implements (checks::IsCheckKind), and adds its
// observation and evidence to `run`. A check that cannot be built (a secret that cannot be read)
// is recorded as unknown. `context` gives the incident, the rollback's completion and the clock.
void RunModuleCheck(const CheckConfig& check, const checks::CheckContext& context, CheckRun& run);

// Reads the manual confirmations of an incident's check from the store.
class StoreConfirmations final : public checks::ConfirmationSource {
 public:
  explicit StoreConfirmations(store::Store& store) : store_(store) {}
  core::Result<std::vector<checks::ManualConfirmation>> List(std::string_view incident_id,
                                                             std::string_view check) const override;

 private:
  store::Store& store_;
};

// Converts between a confirmation and its stored JSON.
nlohmann::json ConfirmationToJson(const checks::ManualConfirmation& confirmation);
core::Result<checks::ManualConfirmation> ConfirmationFromJson(const nlohmann::json& json);

// Saves `content` as an attachment object of `service` under its SHA-256 digest unless one
// exists; returns the digest.
core::Result<std::string> StoreContentByDigest(store::Transaction& tx, const std::string& service,
                                               const std::string& content);

std::string ConfirmationObjectId(std::string_view incident_id, std::string_view check);

}  // namespace backout::app
