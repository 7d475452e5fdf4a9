#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"

namespace backout::checks {

// One request of an `http` check and what its response must show. Text fields may contain
// ${NAME}, replaced by a value captured by an earlier step or by ${incident_id} and ${service}.
struct HttpStep {
  std::string name;  // "step N" when the config gives none
  http::Method method = http::Method::kGet;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  // Header name → secret reference, resolved when the check is built and never shown in details.
  std::vector<std::pair<std::string, std::string>> secret_headers;
  std::string body;
  int expect_status = 200;
  std::optional<std::string> expect_body_contains;
  // JSON pointer (such as /status or /items/0/id) → expected value of the response's JSON body.
  std::vector<std::pair<std::string, nlohmann::json>> expect_json;
  // Variable name → JSON pointer into the response's JSON body, for later steps.
  std::vector<std::pair<std::string, std::string>> capture;
};

// Settings of an `http` check: a smoke test is one step, a key transaction several.
struct HttpCheckSettings {
  std::vector<HttpStep> steps;
  std::chrono::milliseconds timeout{10'000};  // per request
  // How long the check repeats a failing sequence; 0 makes one attempt.
  std::chrono::milliseconds within{0};
  std::chrono::milliseconds interval{5'000};  // between attempts

  // Reads and checks `settings` (docs/validation.md lists the keys).
  static core::Result<HttpCheckSettings> Parse(const nlohmann::json& settings);
};

// Runs the steps in order and passes when every response matches; the first mismatch fails the
// attempt. A request that gets no response (connection refused, timeout) or a reference to an
// unknown variable also fails it, because the check could not show recovery. Secret header values
// are never written to the observation.
class HttpCheck final : public Check {
 public:
  static core::Result<std::unique_ptr<HttpCheck>> Create(std::string name,
                                                         const nlohmann::json& settings,
                                                         const SecretResolver& resolve_secret);

  CheckResult Run(const CheckContext& context) const override;

 private:
  HttpCheck(std::string name, HttpCheckSettings settings,
            std::vector<std::map<std::string, std::string>> secret_values)
      : Check(std::move(name)),
        settings_(std::move(settings)),
        secret_values_(std::move(secret_values)) {}

  // Runs the sequence once. Returns a summary of the responses, or the first mismatch as an error.
  core::Result<std::string> RunOnce(const CheckContext& context) const;

  HttpCheckSettings settings_;
  std::vector<std::map<std::string, std::string>> secret_values_;  // per step: header → value
};

// Replaces each ${NAME} in `text` with variables[NAME]; an unknown name is an error.
core::Result<std::string> ExpandVariables(std::string_view text,
                                          const std::map<std::string, std::string>& variables);

}  // namespace backout::checks
