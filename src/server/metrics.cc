#include "server/metrics.h"

#include <fmt/format.h>

namespace backout::server {
namespace {

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatLabels(const Metrics::Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += fmt::format("{}=\"{}\"", labels[i].first, EscapeLabelValue(labels[i].second));
  }
  return out + "}";
}

}  // namespace

void Metrics::Declare(const std::string& name, Kind kind, std::string help) {
  std::lock_guard lock(mutex_);
  Family& family = families_[name];
  family.kind = kind;
  family.help = std::move(help);
}

void Metrics::Increment(const std::string& name, const Labels& labels, double by) {
  std::lock_guard lock(mutex_);
  families_[name].samples[labels] += by;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  families_[name].samples[labels] = value;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return 0;
  auto sample = family->second.samples.find(labels);
  return sample == family->second.samples.end() ? 0 : sample->second;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out += fmt::format("# HELP {} {}\n", name, family.help);
    out += fmt::format("# TYPE {} {}\n", name, family.kind == Kind::kCounter ? "counter" : "gauge");
    if (family.samples.empty() && family.kind == Kind::kCounter) {
      out += fmt::format("{} 0\n", name);
    }
    for (const auto& [labels, value] : family.samples) {
      out += fmt::format("{}{} {}\n", name, FormatLabels(labels), value);
    }
  }
  return out;
}

void DeclareServerMetrics(Metrics& metrics) {
  metrics.Declare(kRequestsTotal, Metrics::Kind::kCounter,
                  "HTTP responses sent, by method, route pattern and status code.");
  metrics.Declare(kUnauthenticatedTotal, Metrics::Kind::kCounter,
                  "Requests rejected with 401 because the bearer token was missing, unknown, "
                  "revoked or expired.");
  metrics.Declare(kRateLimitedTotal, Metrics::Kind::kCounter,
                  "Requests rejected with 429 because their client address made too many "
                  "unauthenticated attempts.");
  metrics.Declare(kRefusedTotal, Metrics::Kind::kCounter,
                  "Requests of authenticated callers rejected with 403.");
  metrics.Declare(kJobsFinishedTotal, Metrics::Kind::kCounter,
                  "Background jobs finished, by kind and outcome.");
  metrics.Declare(kPayloadTooLargeTotal, Metrics::Kind::kCounter,
                  "Requests rejected with 413 because the body exceeded the route's limit, by "
                  "route pattern.");
  metrics.Declare(kRequestTimeoutsTotal, Metrics::Kind::kCounter,
                  "Connections closed, with 408 where the request had started, because a request "
                  "or a TLS handshake was not received within http.request_timeout.");
  metrics.Declare(kConnectionsRejectedTotal, Metrics::Kind::kCounter,
                  "Connections closed before their request was read because their client address "
                  "already had http.max_connections_per_client connections open.");
}

}  // namespace backout::server
