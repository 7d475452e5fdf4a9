#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace backout::server {

// Counters and gauges rendered in the Prometheus text exposition format (version 0.0.4).
// Thread-safe. Metric names and help texts are fixed at Declare; label values come from the
// caller and are escaped when rendered.
class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  enum class Kind { kCounter, kGauge };

  void Declare(const std::string& name, Kind kind, std::string help);
  void Increment(const std::string& name, const Labels& labels = {}, double by = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  double Value(const std::string& name, const Labels& labels = {}) const;

  std::string Render() const;

 private:
  struct Family {
    Kind kind = Kind::kCounter;
    std::string help;
    std::map<Labels, double> samples;
  };

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Names of the server's metrics, so handlers and tests spell them once.
inline constexpr char kRequestsTotal[] = "backout_http_requests_total";
inline constexpr char kUnauthenticatedTotal[] = "backout_http_unauthenticated_total";
inline constexpr char kRateLimitedTotal[] = "backout_http_rate_limited_total";
inline constexpr char kRefusedTotal[] = "backout_http_refused_total";
inline constexpr char kJobsFinishedTotal[] = "backout_jobs_finished_total";
inline constexpr char kPayloadTooLargeTotal[] = "backout_http_payload_too_large_total";
inline constexpr char kRequestTimeoutsTotal[] = "backout_http_request_timeouts_total";
inline constexpr char kConnectionsRejectedTotal[] = "backout_http_connections_rejected_total";

void DeclareServerMetrics(Metrics& metrics);

}  // namespace backout::server
