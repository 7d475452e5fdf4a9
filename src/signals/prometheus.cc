#include "signals/prometheus.h"

#include <fmt/format.h>

namespace backout::signals {
namespace {

core::ErrorCode CodeOf(http::ErrorKind kind) {
  switch (kind) {
    case http::ErrorKind::kInvalidArgument:
      return core::ErrorCode::kInvalidArgument;
    case http::ErrorKind::kUnavailable:
      return core::ErrorCode::kUnavailable;
    case http::ErrorKind::kTimeout:
      return core::ErrorCode::kTimeout;
    case http::ErrorKind::kInternal:
      return core::ErrorCode::kInternal;
  }
  return core::ErrorCode::kInternal;
}

// Describes at most a few samples of a vector result, such as `{service="x"} 0.42`.
std::string DescribeSamples(const nlohmann::json& result) {
  std::string text;
  size_t shown = 0;
  for (const nlohmann::json& sample : result) {
    if (shown == 3) {
      text += fmt::format(" and {} more", result.size() - shown);
      break;
    }
    std::string labels;
    const nlohmann::json metric = sample.value("metric", nlohmann::json::object());
    for (const auto& [name, value] : metric.items()) {
      if (!labels.empty()) labels += ",";
      labels += fmt::format("{}=\"{}\"", name, value.is_string() ? value.get<std::string>() : "");
    }
    const nlohmann::json value = sample.value("value", nlohmann::json::array());
    const std::string number = value.is_array() && value.size() == 2 && value[1].is_string()
                                   ? value[1].get<std::string>()
                                   : "?";
    if (!text.empty()) text += "; ";
    text += fmt::format("{{{}}} {}", labels, number);
    ++shown;
  }
  return text;
}

}  // namespace

std::string_view ConditionStateName(ConditionState state) {
  switch (state) {
    case ConditionState::kFiring:
      return "firing";
    case ConditionState::kClear:
      return "clear";
    case ConditionState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string EncodeQueryValue(std::string_view text) {
  std::string encoded;
  for (const unsigned char byte : text) {
    if (std::isalnum(byte) || byte == '-' || byte == '_' || byte == '.' || byte == '~') {
      encoded += static_cast<char>(byte);
    } else {
      encoded += fmt::format("%{:02X}", byte);
    }
  }
  return encoded;
}

core::Result<std::unique_ptr<PrometheusClient>> PrometheusClient::Create(
    std::string base_url, std::shared_ptr<http::Client> client, std::chrono::milliseconds timeout) {
  if (!base_url.starts_with("http://") && !base_url.starts_with("https://")) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid Prometheus URL '{}': use http:// or https://", base_url);
  }
  while (base_url.ends_with('/')) base_url.pop_back();
  if (client == nullptr) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the Prometheus client for {} needs an HTTP client", base_url);
  }
  return std::unique_ptr<PrometheusClient>(
      new PrometheusClient(std::move(base_url), std::move(client), timeout));
}

core::Result<nlohmann::json> PrometheusClient::InstantQuery(std::string_view promql,
                                                            std::optional<core::Time> at) const {
  std::string url = fmt::format("{}/api/v1/query?query={}", base_url_, EncodeQueryValue(promql));
  if (at) {
    const auto micros = at->time_since_epoch().count();
    url += fmt::format("&time={}.{:06d}", micros / 1'000'000, micros % 1'000'000);
  }
  http::Request request{.method = http::Method::kGet, .url = url, .total_timeout = timeout_};
  request.headers.Set("Accept", "application/json");
  auto response = client_->Send(request);
  if (!response) {
    return core::MakeError(CodeOf(response.error().kind), "Prometheus at {} could not be read: {}",
                           base_url_, response.error().message);
  }

  nlohmann::json body;
  try {
    body = nlohmann::json::parse(response->body);
  } catch (const nlohmann::json::parse_error& error) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "Prometheus at {} answered HTTP {} with a body that is not JSON (byte "
                           "{}); check that the URL points at Prometheus",
                           base_url_, response->status, error.byte);
  }
  if (response->status != 200 || body.value("status", "") != "success") {
    const core::ErrorCode code = response->status == 400 || response->status == 422
                                     ? core::ErrorCode::kInvalidArgument
                                     : core::ErrorCode::kUnavailable;
    return core::MakeError(code, "Prometheus at {} rejected query `{}` with HTTP {}: {}: {}",
                           base_url_, promql, response->status, body.value("errorType", "?"),
                           body.value("error", "?"));
  }
  return body.value("data", nlohmann::json::object());
}

ConditionResult PrometheusClient::Evaluate(std::string_view promql,
                                           std::optional<core::Time> at) const {
  auto data = InstantQuery(promql, at);
  if (!data) {
    return ConditionResult{.state = ConditionState::kUnknown, .detail = data.error().message};
  }
  const std::string type = data->value("resultType", "");
  const nlohmann::json result = data->value("result", nlohmann::json());
  if (type == "vector" || type == "matrix") {
    if (!result.is_array()) {
      return ConditionResult{.state = ConditionState::kUnknown,
                             .detail = "the query result has no `result` list"};
    }
    const int samples = static_cast<int>(result.size());
    if (samples == 0) {
      return ConditionResult{.state = ConditionState::kClear, .detail = "no samples"};
    }
    return ConditionResult{
        .state = ConditionState::kFiring, .detail = DescribeSamples(result), .samples = samples};
  }
  if (type == "scalar" && result.is_array() && result.size() == 2 && result[1].is_string()) {
    const std::string value = result[1].get<std::string>();
    const bool zero = value == "0" || value == "NaN";
    return ConditionResult{.state = zero ? ConditionState::kClear : ConditionState::kFiring,
                           .detail = fmt::format("scalar {}", value),
                           .samples = 1};
  }
  return ConditionResult{.state = ConditionState::kUnknown,
                         .detail = fmt::format("unexpected result type '{}'", type)};
}

}  // namespace backout::signals
