#include "support/alertmanager_server.h"

#include <cstdlib>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace backout::testing {
namespace {

constexpr std::string_view kAlertmanagerBinary = "/usr/bin/prometheus-alertmanager";
constexpr std::chrono::seconds kReadyTimeout{30};

std::string QuoteYaml(const std::string& text) { return nlohmann::json(text).dump(); }

std::string BuildConfig(const AlertmanagerOptions& options) {
  std::string yaml = fmt::format(
      "route:\n  receiver: webhook\n  group_by: {}\n  group_wait: {}\n  group_interval: {}\n"
      "  repeat_interval: {}\nreceivers:\n  - name: webhook\n    webhook_configs:\n"
      "      - url: {}\n        send_resolved: true\n        max_alerts: {}\n",
      options.group_by, options.group_wait, options.group_interval, options.repeat_interval,
      QuoteYaml(options.webhook_url), options.max_alerts);
  if (!options.bearer_token.empty()) {
    yaml += fmt::format(
        "        http_config:\n          authorization:\n            type: Bearer\n"
        "            credentials: {}\n",
        QuoteYaml(options.bearer_token));
  }
  return yaml;
}

}  // namespace

std::expected<std::unique_ptr<AlertmanagerServer>, std::string> AlertmanagerServer::Start(
    const AlertmanagerOptions& options) {
  if (!std::filesystem::exists(kAlertmanagerBinary)) {
    return std::unexpected(
        fmt::format("{} not found; install the Debian package prometheus-alertmanager "
                    "(scripts/install-deps.sh does)",
                    kAlertmanagerBinary));
  }
  std::unique_ptr<AlertmanagerServer> server(new AlertmanagerServer());
  const char* base = std::getenv("BACKOUT_TEST_TMPDIR");
  const std::filesystem::path tmp = base ? base : std::filesystem::temp_directory_path();
  std::error_code error;
  std::filesystem::create_directories(tmp, error);
  std::string pattern = (tmp / "backout-alertmanager-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected(fmt::format("cannot create a temporary folder {}", pattern));
  }
  server->root_ = pattern;

  const std::string config =
      options.config_yaml.empty() ? BuildConfig(options) : options.config_yaml;
  std::ofstream out(server->root_ / "alertmanager.yml", std::ios::trunc);
  out << config;
  out.close();
  if (!out) return std::unexpected("cannot write " + (server->root_ / "alertmanager.yml").string());

  // Another process may take the port between the probe and the bind; try a few.
  std::string failure;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port) return std::unexpected(port.error());
    bool bind_failed = false;
    auto launched = server->Launch(*port, bind_failed);
    if (launched) return server;
    failure = launched.error();
    if (!bind_failed) break;
  }
  return std::unexpected(failure);
}

AlertmanagerServer::~AlertmanagerServer() {
  process_.Stop();
  if (!root_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
}

std::string AlertmanagerServer::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

std::string AlertmanagerServer::Address() const { return fmt::format("127.0.0.1:{}", port_); }

void AlertmanagerServer::Stop() { process_.Stop(); }

std::expected<void, std::string> AlertmanagerServer::Launch(int port, bool& bind_failed) {
  bind_failed = false;
  port_ = port;
  std::error_code ignored;
  std::filesystem::remove_all(root_ / "data", ignored);
  auto process = ChildProcess::Spawn(
      {std::string(kAlertmanagerBinary), "--config.file=" + (root_ / "alertmanager.yml").string(),
       "--storage.path=" + (root_ / "data").string(),
       fmt::format("--web.listen-address=127.0.0.1:{}", port),
       // Empty turns clustering off; the default gossips on 0.0.0.0:9094.
       "--cluster.listen-address=", fmt::format("--web.external-url=http://127.0.0.1:{}", port)},
      LogFile());
  if (!process) return std::unexpected(process.error());
  process_ = std::move(*process);

  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.Running()) {
      const std::string tail = LogTail();
      bind_failed = tail.find("address already in use") != std::string::npos;
      return std::unexpected(
          fmt::format("Alertmanager exited during start-up on 127.0.0.1:{} (wait status {})\n{}",
                      port, process_.wait_status(), tail));
    }
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(std::chrono::seconds(1));
    auto ready = client.Get("/-/ready");
    if (ready && ready->status == 200) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  process_.Stop();
  return std::unexpected(fmt::format("Alertmanager on 127.0.0.1:{} was not ready after {} s\n{}",
                                     port, kReadyTimeout.count(), LogTail()));
}

std::expected<int, std::string> AlertmanagerServer::PostAlerts(const nlohmann::json& alerts) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  auto result = client.Post("/api/v2/alerts", alerts.dump(), "application/json");
  if (!result) {
    return std::unexpected(
        fmt::format("POST {}/api/v2/alerts failed: {}", Url(), httplib::to_string(result.error())));
  }
  return result->status;
}

std::expected<nlohmann::json, std::string> AlertmanagerServer::GetAlerts() const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  auto result = client.Get("/api/v2/alerts");
  if (!result) {
    return std::unexpected(
        fmt::format("GET {}/api/v2/alerts failed: {}", Url(), httplib::to_string(result.error())));
  }
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  if (result->status != 200 || body.is_discarded()) {
    return std::unexpected(fmt::format("GET {}/api/v2/alerts returned HTTP {}: {}", Url(),
                                       result->status, result->body));
  }
  return body;
}

std::string AlertmanagerServer::LogTail() const {
  return fmt::format("--- tail of {} ---\n{}", LogFile().string(), TailOfFile(LogFile(), 30));
}

}  // namespace backout::testing
