#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/domain.h"
#include "core/error.h"
#include "http/client.h"

namespace backout::checks {

// A confirmation that a person recorded for a `manual` check of an incident.
struct ManualConfirmation {
  std::string confirmed_by;
  core::Time confirmed_at{};
  bool passed = true;
  std::string note;
  std::string attachment_name;    // empty without an attachment
  std::string attachment_sha256;  // lower-case hex
};

// The source `manual` checks read confirmations from. The app implements it on the store.
// Implementations must be thread-safe.
class ConfirmationSource {
 public:
  virtual ~ConfirmationSource() = default;
  // Returns every confirmation recorded for `check` of incident `incident_id`, oldest first.
  virtual core::Result<std::vector<ManualConfirmation>> List(std::string_view incident_id,
                                                             std::string_view check) const = 0;
};

// The validation's inputs to a check run. The pointers must outlive the run.
struct CheckContext {
  std::string incident_id;
  std::string service;
  // When the rollback being validated completed. Only observations taken after it count.
  core::Time rollback_finished_at{};
  // When the suspected change was deployed, where the metric evidence starts; the rollback's
  // start when no change is known.
  core::Time change_at{};
  const core::Clock* clock = nullptr;
  http::Client* http = nullptr;
  const ConfirmationSource* confirmations = nullptr;
  // Returns true when the validation must stop waiting (the server is shutting down).
  std::function<bool()> stop_requested = [] { return false; };
  // Waits between polls. Default: std::this_thread::sleep_for; unit tests advance a ManualClock.
  std::function<void(std::chrono::milliseconds)> sleep{};
};

// A `prometheus` check's raw data: the query_range response from before the change until the end
// of the check, and where it came from. The app digests and stores the body.
struct MetricEvidence {
  core::MetricSeries series;  // response_sha256 and response_size are left for the app
  std::string response_body;
};

struct CheckResult {
  core::Observation observation;
  std::optional<MetricEvidence> evidence;
};

// One validation check of a service, built from its configuration. Run may block for as long as
// the check's own settings allow (a `within` window, a wait for a confirmation), polling
// context.stop_requested. A check that cannot be evaluated returns result kUnknown, which the
// finding counts as failed. Thread-safe once built.
class Check {
 public:
  virtual ~Check() = default;
  virtual CheckResult Run(const CheckContext& context) const = 0;
  const std::string& name() const { return name_; }

 protected:
  explicit Check(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

// Resolves a secret reference (`env:NAME`, `file:PATH`) to its value. The app passes its own.
using SecretResolver = std::function<core::Result<std::string>(std::string_view reference)>;

// Builds the check of kind `kind` (http, prometheus, manual) from its settings. Settings are
// validated here too, so the config loader calls ValidateSettings with the same rules.
core::Result<std::unique_ptr<Check>> CreateCheck(std::string name, std::string_view kind,
                                                 const nlohmann::json& settings,
                                                 SecretResolver resolve_secret);

// Returns whether this module implements checks of `kind`.
bool IsCheckKind(std::string_view kind);

// Checks the settings of a check of `kind` without resolving secrets. The error message names
// the key, such as `steps[1].expect_status: …`.
core::Result<void> ValidateSettings(std::string_view kind, const nlohmann::json& settings);

// Waits `delay` through context.sleep, or the thread's sleep when unset.
void SleepFor(const CheckContext& context, std::chrono::milliseconds delay);

}  // namespace backout::checks
