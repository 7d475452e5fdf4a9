#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace httplib {
class Server;
}  // namespace httplib

namespace backout::testing {

// A request that reached a MetricsTarget route, as recorded for the test.
struct TargetRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> headers;  // names as sent
  std::string body;
};

// The response a MetricsTarget route sends.
struct TargetResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

// A small service on 127.0.0.1 that stands for the application Backout watches. It serves:
// - GET /metrics: Prometheus text format with the counters
//     requests_total{service="S",version="V"} and errors_total{service="S",version="V"}
//   which grow at the request rate and error ratio the test sets with SetTraffic, so that
//   `rate(errors_total[30s]) / rate(requests_total[30s])` on a scraping Prometheus converges to
//   the ratio. It also exports metrics_target_scrapes_total.
// - GET /health: the status and body set with SetHealth (200 "ok" at first).
// - any route added with SetRoute, for smoke tests and key transactions.
// Every request except /metrics is recorded (Requests()). Thread-safe; the server runs on a
// thread of its own until Stop() or destruction.
class MetricsTarget {
 public:
  using Handler = std::function<TargetResponse(const TargetRequest&)>;

  // Binds a free port of 127.0.0.1 and starts serving.
  static std::expected<std::unique_ptr<MetricsTarget>, std::string> Start();

  ~MetricsTarget();
  MetricsTarget(const MetricsTarget&) = delete;
  MetricsTarget& operator=(const MetricsTarget&) = delete;

  void Stop();

  int port() const { return port_; }
  std::string Url() const;      // http://127.0.0.1:PORT
  std::string Address() const;  // 127.0.0.1:PORT, as a Prometheus scrape target

  // From now on the series of (`service`, `version`) receives `requests_per_second` requests, of
  // which the fraction `error_ratio` (0 to 1) fail. The counters keep what they had counted so
  // far, as a real service's counters do. A rate of 0 stops the series from growing but keeps
  // exporting it.
  void SetTraffic(const std::string& service, const std::string& version,
                  double requests_per_second, double error_ratio);

  // The response of GET /health.
  void SetHealth(int status, std::string body);

  // Serves `method` `path` (exact match) with `handler`.
  void SetRoute(const std::string& method, const std::string& path, Handler handler);
  // Serves `method` `path` with a fixed response.
  void SetRoute(const std::string& method, const std::string& path, TargetResponse response);

  // The current /metrics text.
  std::string RenderMetrics();
  std::vector<TargetRequest> Requests();
  int ScrapeCount();

 private:
  MetricsTarget() = default;

  struct Series {
    double requests = 0;  // counted up to `since`
    double errors = 0;
    double requests_per_second = 0;
    double error_ratio = 0;
    std::chrono::steady_clock::time_point since;
  };
  // Brings `series` forward to `now` at its current rates.
  static void Advance(Series& series, std::chrono::steady_clock::time_point now);

  std::mutex mutex_;  // guards everything below it
  std::map<std::pair<std::string, std::string>, Series> series_;
  TargetResponse health_{200, "ok", "text/plain"};
  std::map<std::pair<std::string, std::string>, Handler> routes_;
  std::vector<TargetRequest> requests_;
  int scrapes_ = 0;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace backout::testing
