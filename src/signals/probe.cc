#include "signals/probe.h"

#include <fmt/format.h>

namespace backout::signals {

ConditionResult RunProbe(http::Client& client, const ProbeSpec& probe) {
  http::Method method = http::Method::kGet;
  if (probe.method == "HEAD") {
    method = http::Method::kHead;
  } else if (probe.method == "POST") {
    method = http::Method::kPost;
  } else if (probe.method != "GET") {
    return ConditionResult{
        .state = ConditionState::kUnknown,
        .detail = fmt::format("probe {}: unsupported method {}; use GET, HEAD or POST", probe.name,
                              probe.method)};
  }
  http::Request request{.method = method,
                        .url = probe.url,
                        .idempotent = false,
                        .connect_timeout = probe.timeout,
                        .total_timeout = probe.timeout};
  auto response = client.Send(request);
  if (!response) {
    if (response.error().kind == http::ErrorKind::kInvalidArgument) {
      return ConditionResult{.state = ConditionState::kUnknown, .detail = response.error().message};
    }
    return ConditionResult{
        .state = ConditionState::kFiring,
        .detail = fmt::format("probe {}: no response: {}", probe.name, response.error().message)};
  }
  if (response->status != probe.expected_status) {
    return ConditionResult{
        .state = ConditionState::kFiring,
        .detail = fmt::format("probe {}: {} {} answered {}, expected {}", probe.name, probe.method,
                              probe.url, response->status, probe.expected_status),
        .samples = 1};
  }
  return ConditionResult{
      .state = ConditionState::kClear,
      .detail = fmt::format("probe {}: answered {}", probe.name, response->status)};
}

}  // namespace backout::signals
