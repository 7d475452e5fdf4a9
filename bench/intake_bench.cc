// Alert intake: alerts committed per second through Backout's Alertmanager webhook receiver
// (POST /api/v1/signals/alertmanager) against Alertmanager's own intake (POST /api/v2/alerts).
// Backout commits each request's alerts and a ledger entry to SQLite before it replies, with
// concurrent requests sharing one transaction; Alertmanager keeps alerts in memory. Both run on
// this machine in the same run, with the same batches and the same number of concurrent clients.
// The two are measured in alternating rounds, each with new alerts, and the median round of each
// is reported, so a burst of other work on the machine moves both sides alike.
// Usage: intake_bench [--requests N] [--alerts-per-request K] [--clients C] [--rounds R]
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "server/control_plane_server.h"
#include "store/system_clock.h"
#include "support/alertmanager_server.h"
#include "support/temp_dir.h"

namespace {

using namespace backout;
using Seconds = std::chrono::duration<double>;
using nlohmann::json;

constexpr char kToken[] = "intake-bench-token";

struct Options {
  int requests = 400;
  int alerts_per_request = 50;
  int clients = 4;
  int rounds = 3;
};

std::string Iso(std::chrono::system_clock::time_point time) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z",
                     std::chrono::time_point_cast<std::chrono::seconds>(time));
}

json Labels(int request, int alert) {
  return {{"alertname", "IntakeBench"},
          {"service", "checkout"},
          {"severity", "warning"},
          {"instance", fmt::format("10.0.{}.{}", request, alert)}};
}

// The webhook body Alertmanager would send for one group of `count` alerts.
std::string WebhookBody(int request, int count, const std::string& starts_at) {
  json alerts = json::array();
  for (int i = 0; i < count; ++i) {
    alerts.push_back({{"status", "firing"},
                      {"labels", Labels(request, i)},
                      {"annotations", {{"summary", "bench"}}},
                      {"startsAt", starts_at},
                      {"endsAt", "0001-01-01T00:00:00Z"},
                      {"generatorURL", "http://127.0.0.1:9090/graph"},
                      {"fingerprint", fmt::format("{:08x}{:08x}", request, i)}});
  }
  return json{{"version", "4"},
              {"groupKey", fmt::format("{{}}:{{alertname=\"IntakeBench\", n=\"{}\"}}", request)},
              {"truncatedAlerts", 0},
              {"status", "firing"},
              {"receiver", "backout"},
              {"groupLabels", {{"alertname", "IntakeBench"}}},
              {"commonLabels", {{"alertname", "IntakeBench"}}},
              {"commonAnnotations", json::object()},
              {"externalURL", "http://127.0.0.1:9093"},
              {"alerts", alerts}}
      .dump();
}

// The same alerts as Alertmanager's API v2 takes them.
std::string PostableAlerts(int request, int count, const std::string& starts_at) {
  json alerts = json::array();
  for (int i = 0; i < count; ++i) {
    alerts.push_back({{"labels", Labels(request, i)},
                      {"annotations", {{"summary", "bench"}}},
                      {"startsAt", starts_at},
                      {"generatorURL", "http://127.0.0.1:9090/graph"}});
  }
  return alerts.dump();
}

// Sends `bodies` to port/path from `clients` threads, each on one keep-alive connection, and
// returns the seconds taken. Exits when a response status is not 200.
double Send(int port, const std::string& path, const std::vector<std::string>& bodies, int clients,
            const httplib::Headers& headers) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_read_timeout(60, 0);
      for (size_t i = next++; i < bodies.size(); i = next++) {
        auto response = client.Post(path, headers, bodies[i], "application/json");
        if (!response || response->status != 200) {
          std::fprintf(stderr, "POST %s failed: %s\n", path.c_str(),
                       response ? std::to_string(response->status).c_str() : "no response");
          failed = true;
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  if (failed) std::exit(1);
  return Seconds(std::chrono::steady_clock::now() - start).count();
}

std::unique_ptr<server::ControlPlaneServer> StartBackout(const std::filesystem::path& folder,
                                                         core::Clock& clock) {
  const std::string config = fmt::format(
      "listen: 127.0.0.1:0\n"
      "data_dir: {0}/data\n"
      "signals:\n"
      "  alertmanager:\n"
      "    bearer_token: env:BACKOUT_BENCH_TOKEN\n"
      "services:\n"
      "  - name: checkout\n"
      "    provider:\n"
      "      kind: command\n"
      "      run: ['/bin/true']\n",
      folder.string());
  std::FILE* file = std::fopen((folder / "backout.yaml").c_str(), "w");
  std::fputs(config.c_str(), file);
  std::fclose(file);
  ::setenv("BACKOUT_BENCH_TOKEN", kToken, 1);
  // Intake only: no job workers, so correlation does not compete with the receiver.
  server::ServeOptions options;
  options.config_path = folder / "backout.yaml";
  options.workers = 0;
  auto server = server::ControlPlaneServer::Start(options, clock);
  if (!server) {
    std::fprintf(stderr, "backout did not start: %s\n", server.error().message.c_str());
    std::exit(1);
  }
  return *std::move(server);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--requests") options.requests = value;
    if (flag == "--alerts-per-request") options.alerts_per_request = value;
    if (flag == "--clients") options.clients = value;
    if (flag == "--rounds") options.rounds = std::max(1, value);
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string starts_at = Iso(std::chrono::system_clock::now());
  const double alerts = static_cast<double>(options.requests) * options.alerts_per_request;

  testing::TempDir folder;
  store::SystemClock clock;
  auto backout = StartBackout(folder.path(), clock);
  // Alertmanager 0.25 from Debian, with a receiver that sends nothing.
  testing::AlertmanagerOptions alertmanager_options;
  alertmanager_options.config_yaml = "route:\n  receiver: none\nreceivers:\n  - name: none\n";
  auto alertmanager = testing::AlertmanagerServer::Start(alertmanager_options);
  if (!alertmanager) {
    std::fprintf(stderr, "alertmanager did not start: %s\n", alertmanager.error().c_str());
    return 1;
  }

  std::vector<double> backout_rates;
  std::vector<double> alertmanager_rates;
  for (int round = 0; round < options.rounds; ++round) {
    // New alerts each round, so neither side receives a repeat.
    std::vector<std::string> webhooks;
    std::vector<std::string> postable;
    for (int r = 0; r < options.requests; ++r) {
      const int request = round * options.requests + r;
      webhooks.push_back(WebhookBody(request, options.alerts_per_request, starts_at));
      postable.push_back(PostableAlerts(request, options.alerts_per_request, starts_at));
    }
    // Backout: each request's alerts are committed before its response.
    backout_rates.push_back(alerts / Send(backout->port(), "/api/v1/signals/alertmanager", webhooks,
                                          options.clients,
                                          {{"Authorization", fmt::format("Bearer {}", kToken)}}));
    alertmanager_rates.push_back(
        alerts / Send((*alertmanager)->port(), "/api/v2/alerts", postable, options.clients, {}));
  }
  backout->Stop();
  std::ranges::sort(backout_rates);
  std::ranges::sort(alertmanager_rates);
  const double backout_rate = backout_rates[backout_rates.size() / 2];
  const double alertmanager_rate = alertmanager_rates[alertmanager_rates.size() / 2];
  std::printf(
      "alert intake, %d requests x %d alerts, %d clients, median of %d rounds:\n"
      "  backout webhook (committed, SQLite synchronous FULL): %10.0f alerts/s\n"
      "  alertmanager POST /api/v2/alerts (in memory):          %10.0f alerts/s\n"
      "  ratio backout / alertmanager: %.2f (target >= 1)\n",
      options.requests, options.alerts_per_request, options.clients, options.rounds, backout_rate,
      alertmanager_rate, backout_rate / alertmanager_rate);
  fmt::print("  rounds, sorted: backout {:.0f}; alertmanager {:.0f} alerts/s\n",
             fmt::join(backout_rates, " "), fmt::join(alertmanager_rates, " "));
  return 0;
}
