#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "checks/check.h"

namespace backout::checks {

// Settings of a `prometheus` check: the query must stay below (or above) the threshold for
// `for_duration`, measured only on samples taken after the rollback completed, and must get
// there within `within` of the rollback's completion.
struct PrometheusCheckSettings {
  std::string url;  // Prometheus's base URL, such as http://127.0.0.1:9090
  std::string query;
  std::optional<double> below;  // exactly one of below and above
  std::optional<double> above;
  std::chrono::milliseconds for_duration{60'000};
  std::chrono::milliseconds within{600'000};
  std::chrono::seconds step{15};               // query_range resolution, whole seconds
  std::chrono::milliseconds interval{15'000};  // between polls
  std::chrono::milliseconds evidence_before{
      3'600'000};                             // evidence starts this long before the change
  std::chrono::milliseconds timeout{10'000};  // per request
  std::string bearer_token;                   // a secret reference, or empty

  static core::Result<PrometheusCheckSettings> Parse(const nlohmann::json& settings);
  // Returns "below 0.05" or "above 10".
  std::string ConditionText() const;
};

// The condition evaluated on one query_range response.
struct ConditionEvaluation {
  bool met = false;
  // The last sample considered, and when the run of samples meeting the condition began.
  std::optional<core::Time> last_sample;
  std::optional<core::Time> run_start;
  std::optional<double> last_value;  // the value furthest from the threshold at last_sample
  std::string detail;
};

// Evaluates `result` (the `data.result` matrix of a query_range response) against the condition.
// A timestamp meets it when at least one series has a sample there and every series' sample is
// below (or above) the threshold; NaN never does. Samples not after `after` are ignored. A gap of
// more than 1.5 steps, or a last sample older than two steps before `end`, breaks the run, because
// missing data cannot show recovery. The condition is met when the current run spans at least
// `for_duration`.
ConditionEvaluation EvaluateCondition(const nlohmann::json& result,
                                      const PrometheusCheckSettings& settings, core::Time after,
                                      core::Time end);

// Percent-encodes `text` for an application/x-www-form-urlencoded body (RFC 3986 unreserved
// characters stay as they are).
std::string FormEncode(std::string_view text);

// Polls /api/v1/query_range over the window after the rollback until the condition holds for its
// duration (passed), the `within` window ends (failed), or the validation stops. When Prometheus
// cannot be read or rejects the query the check is unknown, never passed. At the end it fetches
// the evidence range, from `evidence_before` before the change until now.
class PrometheusCheck final : public Check {
 public:
  static core::Result<std::unique_ptr<PrometheusCheck>> Create(
      std::string name, const nlohmann::json& settings, const SecretResolver& resolve_secret);

  CheckResult Run(const CheckContext& context) const override;

  // Runs query_range and returns the raw body and the parsed `data.result`, or an error that
  // contains Prometheus's own error text.
  struct RangeResponse {
    std::string body;
    nlohmann::json result;
  };
  core::Result<RangeResponse> QueryRange(const CheckContext& context, core::Time start,
                                         core::Time end, std::chrono::seconds step) const;

 private:
  PrometheusCheck(std::string name, PrometheusCheckSettings settings, std::string token)
      : Check(std::move(name)), settings_(std::move(settings)), token_(std::move(token)) {}

  std::optional<MetricEvidence> FetchEvidence(const CheckContext& context, core::Time end) const;

  PrometheusCheckSettings settings_;
  std::string token_;  // resolved bearer token, never logged
};

}  // namespace backout::checks
