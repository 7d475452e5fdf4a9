#include "support/prometheus_server.h"

#include <cstdlib>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace backout::testing {
namespace {

constexpr std::string_view kPrometheusBinary = "/usr/bin/prometheus";
constexpr std::chrono::seconds kReadyTimeout{30};

std::expected<std::filesystem::path, std::string> MakeTempFolder(std::string_view prefix) {
  const char* base = std::getenv("BACKOUT_TEST_TMPDIR");
  const std::filesystem::path root = base ? base : std::filesystem::temp_directory_path();
  std::error_code error;
  std::filesystem::create_directories(root, error);
  std::string pattern = (root / fmt::format("{}-XXXXXX", prefix)).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected(fmt::format("cannot create a temporary folder {}", pattern));
  }
  return std::filesystem::path(pattern);
}

std::expected<void, std::string> WriteText(const std::filesystem::path& file,
                                           const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return std::unexpected(fmt::format("cannot write {}", file.string()));
  return {};
}

std::string QuoteYaml(const std::string& text) { return nlohmann::json(text).dump(); }

std::string BuildConfig(const PrometheusOptions& options) {
  std::string yaml =
      fmt::format("global:\n  scrape_interval: {}s\n  evaluation_interval: {}s\n",
                  options.scrape_interval.count(), options.evaluation_interval.count());
  if (!options.alertmanagers.empty()) {
    yaml += "alerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n";
    yaml += "        - targets:\n";
    for (const std::string& target : options.alertmanagers) {
      yaml += fmt::format("            - {}\n", QuoteYaml(target));
    }
  }
  yaml += "scrape_configs:\n";
  if (options.scrape_targets.empty()) yaml += "  []\n";
  for (const auto& [job, targets] : options.scrape_targets) {
    yaml +=
        fmt::format("  - job_name: {}\n    static_configs:\n      - targets:\n", QuoteYaml(job));
    for (const std::string& target : targets) {
      yaml += fmt::format("          - {}\n", QuoteYaml(target));
    }
  }
  return yaml;
}

}  // namespace

std::string AlertingRuleFile(const std::string& group, const std::string& alert,
                             const std::string& expr, const std::string& for_duration,
                             const std::map<std::string, std::string>& labels) {
  std::string yaml = fmt::format(
      "groups:\n  - name: {}\n    rules:\n      - alert: {}\n        expr: {}\n        for: {}\n",
      QuoteYaml(group), QuoteYaml(alert), QuoteYaml(expr), for_duration);
  if (!labels.empty()) {
    yaml += "        labels:\n";
    for (const auto& [name, value] : labels) {
      yaml += fmt::format("          {}: {}\n", name, QuoteYaml(value));
    }
  }
  return yaml;
}

std::expected<std::unique_ptr<PrometheusServer>, std::string> PrometheusServer::Start(
    const PrometheusOptions& options) {
  if (!std::filesystem::exists(kPrometheusBinary)) {
    return std::unexpected(fmt::format(
        "{} not found; install the Debian package prometheus (scripts/install-deps.sh does)",
        kPrometheusBinary));
  }
  std::unique_ptr<PrometheusServer> server(new PrometheusServer());
  auto folder = MakeTempFolder("backout-prometheus");
  if (!folder) return std::unexpected(folder.error());
  server->root_ = *folder;
  server->resend_delay_ = options.alert_resend_delay;
  if (auto written = server->WriteFiles(options); !written) {
    return std::unexpected(written.error());
  }

  // Another process may take the port between the probe and Prometheus's bind; try a few.
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

PrometheusServer::~PrometheusServer() {
  process_.Stop();
  if (!root_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
}

std::string PrometheusServer::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

void PrometheusServer::Stop() { process_.Stop(); }

bool PrometheusServer::Running() { return process_.Running(); }

std::expected<void, std::string> PrometheusServer::WriteFiles(const PrometheusOptions& options) {
  std::string config = options.config_yaml.empty() ? BuildConfig(options) : options.config_yaml;
  if (!options.rule_files.empty()) {
    if (!config.empty() && config.back() != '\n') config += "\n";
    config += "rule_files:\n";
    for (const auto& [name, content] : options.rule_files) {
      const std::filesystem::path file = root_ / name;
      if (auto written = WriteText(file, content); !written) return written;
      config += fmt::format("  - {}\n", QuoteYaml(file.string()));
    }
  }
  return WriteText(root_ / "prometheus.yml", config);
}

std::expected<void, std::string> PrometheusServer::Launch(int port, bool& bind_failed) {
  bind_failed = false;
  port_ = port;
  std::error_code ignored;
  std::filesystem::remove_all(root_ / "data", ignored);
  auto process = ChildProcess::Spawn(
      {std::string(kPrometheusBinary), "--config.file=" + (root_ / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (root_ / "data").string(),
       fmt::format("--web.listen-address=127.0.0.1:{}", port),
       fmt::format("--rules.alert.resend-delay={}s", resend_delay_.count()), "--log.level=info"},
      LogFile());
  if (!process) return std::unexpected(process.error());
  process_ = std::move(*process);

  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.Running()) {
      const std::string tail = LogTail();
      bind_failed = tail.find("address already in use") != std::string::npos;
      return std::unexpected(
          fmt::format("Prometheus exited during start-up on 127.0.0.1:{} (wait status {})\n{}",
                      port, process_.wait_status(), tail));
    }
    auto ready = Get("/-/ready");
    if (ready && ready->status == 200) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  process_.Stop();
  return std::unexpected(fmt::format("Prometheus on 127.0.0.1:{} was not ready after {} s\n{}",
                                     port, kReadyTimeout.count(), LogTail()));
}

std::expected<PrometheusServer::Response, std::string> PrometheusServer::Get(
    const std::string& path_and_query) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  auto result = client.Get(path_and_query.c_str());
  if (!result) {
    return std::unexpected(fmt::format("GET {}{} failed: {}", Url(), path_and_query,
                                       httplib::to_string(result.error())));
  }
  return Response{result->status, result->body};
}

std::expected<nlohmann::json, std::string> PrometheusServer::Query(
    const std::string& promql) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(10));
  httplib::Params params{{"query", promql}};
  auto result = client.Post("/api/v1/query", params);
  if (!result) {
    return std::unexpected(fmt::format("query {} at {} failed: {}", promql, Url(),
                                       httplib::to_string(result.error())));
  }
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || body.value("status", "") != "success") {
    return std::unexpected(fmt::format("query {} at {} returned HTTP {}: {}", promql, Url(),
                                       result->status, result->body));
  }
  return body["data"]["result"];
}

std::expected<nlohmann::json, std::string> PrometheusServer::WaitForQuery(
    const std::string& promql, const std::function<bool(const nlohmann::json&)>& accept,
    std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    auto result = Query(promql);
    if (result && accept(*result)) return *result;
    last = result ? result->dump() : result.error();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::unexpected(
      fmt::format("query {} did not return the expected result within {} ms; "
                  "last result: {}\n{}",
                  promql, timeout.count(), last, LogTail()));
}

std::expected<nlohmann::json, std::string> PrometheusServer::WaitForSeries(
    const std::string& promql, std::chrono::milliseconds timeout) const {
  return WaitForQuery(
      promql, [](const nlohmann::json& result) { return result.is_array() && !result.empty(); },
      timeout);
}

std::expected<void, std::string> PrometheusServer::WaitForTargetsUp(
    std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    auto response = Get("/api/v1/targets?state=active");
    if (response && response->status == 200) {
      nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
      const nlohmann::json targets =
          body.is_discarded() ? nlohmann::json() : body["data"]["activeTargets"];
      bool all_up = targets.is_array() && !targets.empty();
      for (const auto& target : targets) {
        if (target.value("health", "") != "up") all_up = false;
      }
      if (all_up) return {};
      last = response->body;
    } else {
      last = response ? response->body : response.error();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::unexpected(
      fmt::format("the targets of {} were not all up within {} ms; last "
                  "answer: {}\n{}",
                  Url(), timeout.count(), last, LogTail()));
}

std::string PrometheusServer::LogTail() const {
  return fmt::format("--- tail of {} ---\n{}", LogFile().string(), TailOfFile(LogFile(), 30));
}

}  // namespace backout::testing
