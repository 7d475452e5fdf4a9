#include "checks/prometheus_check.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "checks/settings_json.h"

namespace backout::checks {
namespace {

using nlohmann::json;
namespace sj = settings_json;

// Prometheus rejects a query_range of more than 11,000 points per series.
constexpr int64_t kMaxPointsPerSeries = 11'000;

double ToUnixSeconds(core::Time time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

core::Time FromUnixSeconds(double seconds) {
  return core::Time(
      std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(seconds)));
}

// The first whole second strictly after `time`, so every sample of the window is newer than it.
core::Time NextWholeSecond(core::Time time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time) + std::chrono::seconds(1);
  return core::Time(std::chrono::duration_cast<core::Duration>(seconds.time_since_epoch()));
}

std::string FormatSeconds(core::Time time) { return fmt::format("{:.3f}", ToUnixSeconds(time)); }

bool Meets(double value, const PrometheusCheckSettings& settings) {
  if (std::isnan(value)) return false;
  if (settings.below) return value < *settings.below;
  return value > *settings.above;
}

}  // namespace

std::string FormEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

core::Result<PrometheusCheckSettings> PrometheusCheckSettings::Parse(const json& settings) {
  auto keys = sj::OnlyKeys(settings,
                           {"url", "query", "below", "above", "for", "within", "step", "interval",
                            "evidence_before", "timeout", "bearer_token"},
                           "");
  if (!keys) return std::unexpected(keys.error());
  PrometheusCheckSettings parsed;

  auto url = sj::String(settings, "url", "", std::nullopt);
  if (!url) return std::unexpected(url.error());
  if (!url->starts_with("http://") && !url->starts_with("https://")) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "url: '{}' is not an http:// or https:// URL", *url);
  }
  while (url->ends_with("/")) url->pop_back();
  parsed.url = *url;
  auto query = sj::String(settings, "query", "", std::nullopt);
  if (!query) return std::unexpected(query.error());
  if (query->empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "query: must not be empty");
  }
  parsed.query = *query;

  auto below = sj::Number(settings, "below", "");
  if (!below) return std::unexpected(below.error());
  auto above = sj::Number(settings, "above", "");
  if (!above) return std::unexpected(above.error());
  if (below->has_value() == above->has_value()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "below: give exactly one of `below` and `above`, the threshold the "
                           "query must stay under or over");
  }
  parsed.below = *below;
  parsed.above = *above;

  const std::pair<std::string_view, std::chrono::milliseconds*> durations[] = {
      {"for", &parsed.for_duration},
      {"within", &parsed.within},
      {"interval", &parsed.interval},
      {"evidence_before", &parsed.evidence_before},
      {"timeout", &parsed.timeout}};
  for (const auto& [key, target] : durations) {
    auto value = sj::Duration(settings, key, "", *target, key == "for");
    if (!value) return std::unexpected(value.error());
    *target = *value;
  }
  auto step = sj::Duration(settings, "step", "", parsed.step, false);
  if (!step) return std::unexpected(step.error());
  if (step->count() % 1000 != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "step: give a whole number of seconds, such as 15s");
  }
  parsed.step = std::chrono::duration_cast<std::chrono::seconds>(*step);
  if (parsed.within < parsed.for_duration) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "within: must be at least `for` ({} ms), or the condition can never "
                           "hold long enough",
                           parsed.for_duration.count());
  }
  auto token = sj::String(settings, "bearer_token", "", "");
  if (!token) return std::unexpected(token.error());
  parsed.bearer_token = *token;
  return parsed;
}

std::string PrometheusCheckSettings::ConditionText() const {
  return below ? fmt::format("below {}", *below) : fmt::format("above {}", *above);
}

ConditionEvaluation EvaluateCondition(const json& result, const PrometheusCheckSettings& settings,
                                      core::Time after, core::Time end) {
  ConditionEvaluation evaluation;
  if (!result.is_array() || result.empty()) {
    evaluation.detail = "the query returned no series";
    return evaluation;
  }

  // Timestamp → whether every series' sample there meets the condition, and the value furthest
  // from the threshold.
  struct Point {
    bool meets = true;
    double worst = 0;
  };
  std::map<core::Time, Point> points;
  for (const json& series : result) {
    if (!series.contains("values") || !series["values"].is_array()) continue;
    for (const json& sample : series["values"]) {
      if (!sample.is_array() || sample.size() != 2 || !sample[0].is_number() ||
          !sample[1].is_string()) {
        continue;
      }
      const core::Time time = FromUnixSeconds(sample[0].get<double>());
      if (time <= after) continue;
      double value = std::nan("");
      try {
        value = std::stod(sample[1].get<std::string>());
      } catch (const std::exception&) {
      }
      auto [it, inserted] = points.try_emplace(time, Point{true, value});
      Point& point = it->second;
      if (!Meets(value, settings)) point.meets = false;
      const bool worse = settings.below ? !(value <= point.worst) : !(value >= point.worst);
      if (inserted || worse) point.worst = value;
    }
  }
  if (points.empty()) {
    evaluation.detail = "no samples after the rollback yet";
    return evaluation;
  }

  const auto max_gap = std::chrono::duration_cast<core::Duration>(settings.step * 3) / 2;
  std::optional<core::Time> run_start;
  std::optional<core::Time> previous;
  for (const auto& [time, point] : points) {
    const bool gap = previous && time - *previous > max_gap;
    if (!point.meets) {
      run_start.reset();
    } else if (!run_start || gap) {
      run_start = time;
    }
    previous = time;
  }
  evaluation.last_sample = points.rbegin()->first;
  evaluation.last_value = points.rbegin()->second.worst;
  evaluation.run_start = run_start;

  const auto stale_after = std::chrono::duration_cast<core::Duration>(settings.step * 2);
  if (end - *evaluation.last_sample > stale_after) {
    evaluation.detail =
        fmt::format("the last sample ({}) is older than two steps before {}",
                    core::FormatTime(*evaluation.last_sample), core::FormatTime(end));
    evaluation.run_start.reset();
    return evaluation;
  }
  if (!run_start) {
    evaluation.detail = fmt::format("the latest value {} is not {}", *evaluation.last_value,
                                    settings.ConditionText());
    return evaluation;
  }
  const auto held = *evaluation.last_sample - *run_start;
  evaluation.met = held >= std::chrono::duration_cast<core::Duration>(settings.for_duration);
  evaluation.detail = fmt::format(
      "{} since {} ({} s of the required {} s); latest value {}", settings.ConditionText(),
      core::FormatTime(*run_start), std::chrono::duration_cast<std::chrono::seconds>(held).count(),
      std::chrono::duration_cast<std::chrono::seconds>(settings.for_duration).count(),
      *evaluation.last_value);
  return evaluation;
}

core::Result<std::unique_ptr<PrometheusCheck>> PrometheusCheck::Create(
    std::string name, const json& settings, const SecretResolver& resolve_secret) {
  auto parsed = PrometheusCheckSettings::Parse(settings);
  if (!parsed) {
    return core::MakeError(parsed.error().code, "check {}: {}", name, parsed.error().message);
  }
  std::string token;
  if (!parsed->bearer_token.empty()) {
    if (!resolve_secret) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "check {}: no secret resolver for bearer_token", name);
    }
    auto value = resolve_secret(parsed->bearer_token);
    if (!value) {
      return core::MakeError(value.error().code, "check {}: bearer_token: {}", name,
                             value.error().message);
    }
    token = *value;
  }
  return std::unique_ptr<PrometheusCheck>(
      new PrometheusCheck(std::move(name), *std::move(parsed), std::move(token)));
}

core::Result<PrometheusCheck::RangeResponse> PrometheusCheck::QueryRange(
    const CheckContext& context, core::Time start, core::Time end,
    std::chrono::seconds step) const {
  http::Request request{.method = http::Method::kPost,
                        .url = settings_.url + "/api/v1/query_range"};
  request.headers.Set("Content-Type", "application/x-www-form-urlencoded");
  request.headers.Set("Accept", "application/json");
  if (!token_.empty()) request.headers.Set("Authorization", "Bearer " + token_);
  request.body = fmt::format("query={}&start={}&end={}&step={}", FormEncode(settings_.query),
                             FormatSeconds(start), FormatSeconds(end), step.count());
  // query_range only reads, so the client may retry it like a GET.
  request.idempotent = true;
  request.total_timeout = settings_.timeout;
  request.connect_timeout = settings_.timeout;

  auto response = context.http->Send(request);
  if (!response) {
    return core::MakeError(core::ErrorCode::kUnavailable, "Prometheus at {} cannot be read: {}",
                           settings_.url, response.error().message);
  }
  const json body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "Prometheus at {} returned HTTP {} with a body that is not JSON: {}",
                           settings_.url, response->status, response->body.substr(0, 200));
  }
  if (body.value("status", "") != "success") {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "Prometheus at {} rejected query {} (HTTP {}): {}: {}", settings_.url,
                           settings_.query, response->status, body.value("errorType", "?"),
                           body.value("error", "?"));
  }
  const json& data = body["data"];
  if (!data.is_object() || data.value("resultType", "") != "matrix") {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "Prometheus at {} returned no matrix for query {}", settings_.url,
                           settings_.query);
  }
  return RangeResponse{response->body, data["result"]};
}

std::optional<MetricEvidence> PrometheusCheck::FetchEvidence(const CheckContext& context,
                                                             core::Time end) const {
  const core::Time start =
      context.change_at - std::chrono::duration_cast<core::Duration>(settings_.evidence_before);
  const int64_t range_seconds =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(end - start).count());
  // Keep within Prometheus's point limit by coarsening the step for long ranges.
  const auto step = std::chrono::seconds(std::max<int64_t>(
      settings_.step.count(), (range_seconds + kMaxPointsPerSeries - 1) / kMaxPointsPerSeries));
  auto range = QueryRange(context, start, end, step);
  if (!range) {
    spdlog::warn("component=checks incident={} check={} event=evidence_not_fetched error=\"{}\"",
                 context.incident_id, name(), range.error().message);
    return std::nullopt;
  }
  MetricEvidence evidence;
  evidence.series = core::MetricSeries{.check = name(),
                                       .prometheus_url = settings_.url,
                                       .query = settings_.query,
                                       .start = start,
                                       .end = end,
                                       .step_seconds = step.count(),
                                       .condition = settings_.ConditionText()};
  evidence.response_body = std::move(range->body);
  return evidence;
}

CheckResult PrometheusCheck::Run(const CheckContext& context) const {
  core::Observation observation{.check = name(), .kind = "prometheus"};
  const core::Time window_start = NextWholeSecond(context.rollback_finished_at);
  const core::Time deadline =
      context.rollback_finished_at + std::chrono::duration_cast<core::Duration>(settings_.within);

  std::string last_problem = "the check did not run";
  bool could_evaluate = false;
  while (true) {
    const core::Time now = context.clock->Now();
    if (now > window_start) {
      // A validation requested long after the rollback reads only the latest points Prometheus
      // allows in one query; they are still all newer than the rollback.
      const core::Time earliest = now - std::chrono::duration_cast<core::Duration>(
                                            settings_.step * (kMaxPointsPerSeries - 1));
      auto range = QueryRange(context, std::max(window_start, earliest), now, settings_.step);
      if (!range) {
        could_evaluate = false;
        last_problem = range.error().message;
      } else {
        could_evaluate = true;
        ConditionEvaluation evaluation =
            EvaluateCondition(range->result, settings_, context.rollback_finished_at, now);
        last_problem = evaluation.detail;
        if (evaluation.met) {
          observation.result = core::ObservationResult::kPassed;
          observation.detail = fmt::format("{} is {}", settings_.query, evaluation.detail);
          observation.observed_at = *evaluation.last_sample;
          break;
        }
      }
    }
    if (now >= deadline || context.stop_requested()) {
      // Prometheus unreadable or a rejected query leaves the check unknown; a condition that never
      // held long enough fails it.
      observation.result =
          could_evaluate ? core::ObservationResult::kFailed : core::ObservationResult::kUnknown;
      observation.detail = fmt::format(
          "{} was not {} for {} s within {} s after the rollback: {}", settings_.query,
          settings_.ConditionText(),
          std::chrono::duration_cast<std::chrono::seconds>(settings_.for_duration).count(),
          std::chrono::duration_cast<std::chrono::seconds>(settings_.within).count(), last_problem);
      observation.observed_at = now;
      break;
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    SleepFor(context,
             std::min(settings_.interval, std::max(remaining, std::chrono::milliseconds(1))));
  }

  CheckResult result{observation, FetchEvidence(context, context.clock->Now())};
  return result;
}

}  // namespace backout::checks
