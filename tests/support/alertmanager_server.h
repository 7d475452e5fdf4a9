#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/child_process.h"

namespace backout::testing {

// What a test Alertmanager sends where.
struct AlertmanagerOptions {
  // The webhook receiver URL (a 127.0.0.1 address) every alert goes to.
  std::string webhook_url;
  // Sent as `Authorization: Bearer TOKEN` by the webhook's http_config when not empty.
  std::string bearer_token;
  // The route's timers, short so tests see notifications within about a second.
  std::string group_wait = "200ms";
  std::string group_interval = "1s";
  std::string repeat_interval = "1h";
  std::string group_by = "['alertname', 'service']";
  int max_alerts = 0;  // 0 sends every alert of a group
  // When set, the whole alertmanager.yml instead of one built from the fields above.
  std::string config_yaml;
};

// A real Alertmanager (Debian's /usr/bin/prometheus-alertmanager, 0.25 here) for tests, on a free
// port of 127.0.0.1 with clustering off (`--cluster.listen-address=` empty, because otherwise
// gossip listens on 0.0.0.0:9094). Start() returns once /-/ready returns 200. Destroying the object
// stops it by its PID and removes its folder. Tests fail, never skip, when Start() returns an
// error. Not thread-safe.
class AlertmanagerServer {
 public:
  static std::expected<std::unique_ptr<AlertmanagerServer>, std::string> Start(
      const AlertmanagerOptions& options);

  ~AlertmanagerServer();
  AlertmanagerServer(const AlertmanagerServer&) = delete;
  AlertmanagerServer& operator=(const AlertmanagerServer&) = delete;

  int port() const { return port_; }
  std::string Url() const;      // http://127.0.0.1:PORT
  std::string Address() const;  // 127.0.0.1:PORT, for PrometheusOptions::alertmanagers

  void Stop();

  // POST /api/v2/alerts with `alerts` (a JSON array of postable alerts); returns the HTTP status.
  std::expected<int, std::string> PostAlerts(const nlohmann::json& alerts) const;
  // GET /api/v2/alerts: the alerts Alertmanager contains now.
  std::expected<nlohmann::json, std::string> GetAlerts() const;

  std::string LogTail() const;

 private:
  AlertmanagerServer() = default;
  std::expected<void, std::string> Launch(int port, bool& bind_failed);
  std::filesystem::path LogFile() const { return root_ / "alertmanager.log"; }

  std::filesystem::path root_;
  ChildProcess process_;
  int port_ = 0;
};

}  // namespace backout::testing
