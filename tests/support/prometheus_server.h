#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.h"

namespace backout::testing {

// What a test Prometheus scrapes and evaluates.
struct PrometheusOptions {
  // Scrape jobs: job name → targets as "127.0.0.1:PORT".
  std::map<std::string, std::vector<std::string>> scrape_targets;
  std::chrono::seconds scrape_interval{1};
  std::chrono::seconds evaluation_interval{1};
  // Rule files: file name (such as "rules.yml") → YAML content. They are written into the
  // server's folder and listed under `rule_files`.
  std::map<std::string, std::string> rule_files;
  // Alertmanagers ("127.0.0.1:PORT", API v2) that receive the alerts of the rules.
  std::vector<std::string> alertmanagers;
  // --rules.alert.resend-delay: how often firing alerts are sent again. Prometheus's default is
  // 1m, and alerts that fire before the Alertmanager is discovered (about 5 s after start) are
  // dropped, so with the default a rule that fires at once reaches Alertmanager only a minute
  // later.
  std::chrono::seconds alert_resend_delay{1};
  // When set, the whole prometheus.yml instead of one built from the fields above. The rule files
  // are still written, and a `rule_files` list naming them is appended, so this text must not
  // have one of its own.
  std::string config_yaml;
};

// A real Prometheus server (Debian's /usr/bin/prometheus, 2.42 here) for tests: a temporary folder
// holds its configuration, rule files, TSDB storage and log; it listens on a free port of
// 127.0.0.1 only. Start() returns once /-/ready answers 200. Destroying the object stops the
// server by its PID and removes the folder.
//
// Prometheus throttles service discovery updates to one per 5 s (no flag in 2.42), so the first
// sample of a target appears about 5-6 s after start: wait with WaitForQuery, never with a fixed
// sleep. Tests fail, never skip, when Start() returns an error. Not thread-safe.
class PrometheusServer {
 public:
  // The error explains what failed and ends with the tail of the server's log.
  static std::expected<std::unique_ptr<PrometheusServer>, std::string> Start(
      const PrometheusOptions& options);

  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  int port() const { return port_; }
  std::string Url() const;  // http://127.0.0.1:PORT
  // The folder that holds prometheus.yml, the rule files, data/ and prometheus.log.
  const std::filesystem::path& folder() const { return root_; }

  // Stops the server (SIGTERM, then SIGKILL after 5 s) but keeps its folder, so a test can check
  // how a client behaves when Prometheus is down. The port stays unused afterwards.
  void Stop();
  bool Running();

  // An HTTP GET of `path_and_query` (for example "/api/v1/targets"): the status and the body.
  struct Response {
    int status = 0;
    std::string body;
  };
  std::expected<Response, std::string> Get(const std::string& path_and_query) const;

  // Runs an instant query (POST /api/v1/query) and returns `data.result`, or an error that
  // contains Prometheus's own error text.
  std::expected<nlohmann::json, std::string> Query(const std::string& promql) const;

  // Repeats Query every 100 ms until `accept(data.result)` returns true, and returns that result.
  // Fails with the last result or error after `timeout`.
  std::expected<nlohmann::json, std::string> WaitForQuery(
      const std::string& promql, const std::function<bool(const nlohmann::json&)>& accept,
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // Waits until the instant query returns at least one series.
  std::expected<nlohmann::json, std::string> WaitForSeries(
      const std::string& promql,
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // Waits until every active target of /api/v1/targets reports health "up".
  std::expected<void, std::string> WaitForTargetsUp(
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // The last lines of the server's log, for failure messages.
  std::string LogTail() const;

 private:
  PrometheusServer() = default;

  std::expected<void, std::string> WriteFiles(const PrometheusOptions& options);
  // Starts the process on `port` and waits for /-/ready; false in `bind_failed` when the port was
  // taken between the probe and the bind.
  std::expected<void, std::string> Launch(int port, bool& bind_failed);
  std::filesystem::path LogFile() const { return root_ / "prometheus.log"; }

  std::filesystem::path root_;
  ChildProcess process_;
  std::chrono::seconds resend_delay_{1};
  int port_ = 0;
};

// Builds the YAML of a rule group named `group` with one alerting rule, for PrometheusOptions.
std::string AlertingRuleFile(const std::string& group, const std::string& alert,
                             const std::string& expr, const std::string& for_duration,
                             const std::map<std::string, std::string>& labels);

}  // namespace backout::testing
