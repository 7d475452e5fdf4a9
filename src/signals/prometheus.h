#pragma once

// Reads Prometheus through its HTTP API (GET /api/v1/query) and evaluates detection conditions.
// A condition is a PromQL expression that returns samples while something is wrong, as the
// `expr` of a Prometheus alerting rule does: any sample means firing, an empty result clear.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"
#include "http/client.h"

namespace backout::signals {

// The state of a condition. kUnknown when Prometheus could not be read or returned an error:
// an unreadable condition is never taken for a healthy one.
enum class ConditionState { kFiring, kClear, kUnknown };
std::string_view ConditionStateName(ConditionState state);  // "firing", "clear", "unknown"

struct ConditionResult {
  ConditionState state = ConditionState::kUnknown;
  std::string detail;  // the samples, or why the state is unknown
  int samples = 0;
};

// A client of one Prometheus server. Thread-safe, as http::Client is.
class PrometheusClient {
 public:
  // `base_url` is the server's root, such as http://127.0.0.1:9090, without a trailing path.
  static core::Result<std::unique_ptr<PrometheusClient>> Create(
      std::string base_url, std::shared_ptr<http::Client> client,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Runs an instant query and returns the `data` object of a successful response. Fails with
  // kUnavailable or kTimeout when Prometheus does not respond, and with kInvalidArgument when it
  // rejects the query.
  // `at` evaluates the query at that time instead of now.
  core::Result<nlohmann::json> InstantQuery(std::string_view promql,
                                            std::optional<core::Time> at = std::nullopt) const;

  // Evaluates `promql` as a condition, now or at `at`. Never fails: errors become kUnknown with
  // the reason.
  ConditionResult Evaluate(std::string_view promql,
                           std::optional<core::Time> at = std::nullopt) const;

  const std::string& base_url() const { return base_url_; }

 private:
  PrometheusClient(std::string base_url, std::shared_ptr<http::Client> client,
                   std::chrono::milliseconds timeout)
      : base_url_(std::move(base_url)), client_(std::move(client)), timeout_(timeout) {}

  std::string base_url_;
  std::shared_ptr<http::Client> client_;
  std::chrono::milliseconds timeout_;
};

// Returns `text` percent-encoded for a URL query value (RFC 3986 unreserved bytes stay).
std::string EncodeQueryValue(std::string_view text);

}  // namespace backout::signals
