#include "support/metrics_target.h"

#include <fmt/format.h>
#include <httplib.h>

namespace backout::testing {
namespace {

// Prometheus text format label values escape backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return escaped;
}

TargetRequest ToTargetRequest(const httplib::Request& request) {
  TargetRequest copy;
  copy.method = request.method;
  copy.path = request.path;
  for (const auto& [name, value] : request.headers) copy.headers.emplace(name, value);
  copy.body = request.body;
  return copy;
}

}  // namespace

std::expected<std::unique_ptr<MetricsTarget>, std::string> MetricsTarget::Start() {
  std::unique_ptr<MetricsTarget> target(new MetricsTarget());
  target->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *target->server_;
  server.set_tcp_nodelay(true);
  MetricsTarget* self = target.get();

  server.Get("/metrics", [self](const httplib::Request&, httplib::Response& response) {
    std::string text = self->RenderMetrics();
    {
      std::lock_guard lock(self->mutex_);
      ++self->scrapes_;
    }
    response.set_content(text, "text/plain; version=0.0.4");
  });
  // Every other request goes through one handler that looks up the test's routes.
  const auto dispatch = [self](const httplib::Request& request, httplib::Response& response) {
    TargetRequest copy = ToTargetRequest(request);
    TargetResponse answer{404, "no route for " + request.method + " " + request.path, "text/plain"};
    Handler handler;
    {
      std::lock_guard lock(self->mutex_);
      self->requests_.push_back(copy);
      if (request.path == "/health" && request.method == "GET") answer = self->health_;
      auto found = self->routes_.find({request.method, request.path});
      if (found != self->routes_.end()) handler = found->second;
    }
    if (handler) answer = handler(copy);
    response.status = answer.status;
    response.set_content(answer.body, answer.content_type.c_str());
  };
  server.Get(".*", dispatch);
  server.Post(".*", dispatch);
  server.Put(".*", dispatch);
  server.Delete(".*", dispatch);
  server.Patch(".*", dispatch);

  target->port_ = server.bind_to_any_port("127.0.0.1");
  if (target->port_ <= 0) {
    return std::unexpected("the metrics target cannot bind a port on 127.0.0.1");
  }
  target->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return target;
}

MetricsTarget::~MetricsTarget() { Stop(); }

void MetricsTarget::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string MetricsTarget::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

std::string MetricsTarget::Address() const { return fmt::format("127.0.0.1:{}", port_); }

void MetricsTarget::Advance(Series& series, std::chrono::steady_clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - series.since).count();
  if (seconds > 0) {
    series.requests += series.requests_per_second * seconds;
    series.errors += series.requests_per_second * series.error_ratio * seconds;
  }
  series.since = now;
}

void MetricsTarget::SetTraffic(const std::string& service, const std::string& version,
                               double requests_per_second, double error_ratio) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto [it, inserted] = series_.try_emplace({service, version});
  if (inserted) it->second.since = now;
  Advance(it->second, now);
  it->second.requests_per_second = requests_per_second;
  it->second.error_ratio = error_ratio;
}

void MetricsTarget::SetHealth(int status, std::string body) {
  std::lock_guard lock(mutex_);
  health_ = TargetResponse{status, std::move(body), "text/plain"};
}

void MetricsTarget::SetRoute(const std::string& method, const std::string& path, Handler handler) {
  std::lock_guard lock(mutex_);
  routes_[{method, path}] = std::move(handler);
}

void MetricsTarget::SetRoute(const std::string& method, const std::string& path,
                             TargetResponse response) {
  SetRoute(method, path, [response](const TargetRequest&) { return response; });
}

std::string MetricsTarget::RenderMetrics() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  std::string requests = "# HELP requests_total Requests served.\n# TYPE requests_total counter\n";
  std::string errors = "# HELP errors_total Requests that failed.\n# TYPE errors_total counter\n";
  for (auto& [key, series] : series_) {
    Advance(series, now);
    const std::string labels = fmt::format(
        "service=\"{}\",version=\"{}\"", EscapeLabelValue(key.first), EscapeLabelValue(key.second));
    // Counters are exported as whole numbers, as a real service counts requests.
    requests += fmt::format("requests_total{{{}}} {:.0f}\n", labels, series.requests);
    errors += fmt::format("errors_total{{{}}} {:.0f}\n", labels, series.errors);
  }
  return requests + errors +
         fmt::format(
             "# TYPE metrics_target_scrapes_total counter\nmetrics_target_scrapes_total "
             "{}\n",
             scrapes_);
}

std::vector<TargetRequest> MetricsTarget::Requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

int MetricsTarget::ScrapeCount() {
  std::lock_guard lock(mutex_);
  return scrapes_;
}

}  // namespace backout::testing
