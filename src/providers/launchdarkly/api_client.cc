#include "providers/launchdarkly/api_client.h"

#include <fmt/format.h>

#include "http/retry.h"

namespace backout::providers::launchdarkly {
namespace {

using nlohmann::json;

constexpr std::string_view kSemanticPatchType =
    "application/json; domain-model=launchdarkly.semanticpatch";

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string Encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The hint for a status LaunchDarkly documents, written for the person who fixes it.
std::string_view Hint(int status) {
  switch (status) {
    case 401:
      return "the access token is missing, invalid or revoked; check credentials.api_token";
    case 403:
      return "the access token's role may not make this change; grant it the flag actions "
             "(updateOn, updateFallthrough) in this environment";
    case 404:
      return "check project, environment and flag in the provider settings";
    case 405:
      return "the environment requires an approval request for flag changes";
    case 409:
      return "a concurrent change to the flag won the race; read the flag again and retry";
    case 429:
      return "LaunchDarkly rate-limited the call; wait for Retry-After";
    default:
      return "";
  }
}

core::ErrorCode CodeForStatus(int status) {
  switch (status) {
    case 400:
    case 422:
      return core::ErrorCode::kInvalidArgument;
    case 401:
      return core::ErrorCode::kUnauthenticated;
    case 403:
      return core::ErrorCode::kPermissionDenied;
    case 404:
      return core::ErrorCode::kNotFound;
    case 409:
      return core::ErrorCode::kConflict;
    case 429:
      return core::ErrorCode::kUnavailable;
    default:
      return status >= 500 ? core::ErrorCode::kUnavailable : core::ErrorCode::kFailedPrecondition;
  }
}

ApiFailure FailureFromResponse(const http::Response& response, http::TimePoint now) {
  ApiFailure failure;
  failure.status = response.status;
  json body = json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    failure.code = body.value("code", "");
    failure.message = body.value("message", "");
  } else {
    failure.message = response.body.substr(0, 200);
  }
  if (failure.code.empty()) failure.code = fmt::format("http_{}", response.status);

  // Retry-After is in seconds or an HTTP date; X-Ratelimit-Reset is an epoch time in ms.
  if (auto retry_after = response.headers.Get("Retry-After")) {
    failure.retry_after = http::ParseRetryAfter(*retry_after, now);
  } else if (auto reset = response.headers.Get("X-Ratelimit-Reset");
             reset && response.status == 429) {
    try {
      auto reset_at = std::chrono::milliseconds(std::stoll(*reset));
      auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
      failure.retry_after = std::max(std::chrono::milliseconds(0), reset_at - now_ms);
    } catch (const std::exception&) {
      // An unreadable header leaves the wait to the caller's default.
    }
  }
  return failure;
}

}  // namespace

std::string ApiFailure::Describe() const {
  if (kind == Kind::kTransport) {
    return fmt::format("no response from LaunchDarkly ({}): {}", http::ErrorKindName(transport),
                       message);
  }
  std::string text = fmt::format("HTTP {} {}", status, code);
  if (!message.empty()) text += fmt::format(": {}", message);
  if (std::string_view hint = Hint(status); !hint.empty()) text += fmt::format(" ({})", hint);
  return text;
}

core::Error ApiFailure::ToError(std::string_view what) const {
  core::ErrorCode code_value = core::ErrorCode::kUnavailable;
  if (kind == Kind::kTransport) {
    code_value = transport == http::ErrorKind::kTimeout ? core::ErrorCode::kTimeout
                 : transport == http::ErrorKind::kInvalidArgument
                     ? core::ErrorCode::kInvalidArgument
                     : core::ErrorCode::kUnavailable;
  } else {
    code_value = CodeForStatus(status);
  }
  return core::Error{code_value, fmt::format("LaunchDarkly {} failed: {}", what, Describe())};
}

core::Result<std::unique_ptr<ApiClient>> ApiClient::Create(ApiClientOptions options,
                                                           core::Clock& clock) {
  http::ClientOptions http_options;
  http_options.total_timeout = options.request_timeout;
  http_options.connect_timeout =
      std::min(options.request_timeout, std::chrono::milliseconds(10'000));
  http_options.name = options.log_name;
  http_options.user_agent = "backout launchdarkly-provider";
  http_options.now = [&clock] { return clock.Now(); };
  http_options.redaction.secret_values = {options.api_token};
  auto http = http::Client::Create(std::move(http_options));
  if (!http) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot create the LaunchDarkly HTTP client: {}", http.error().message);
  }
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(options), std::move(*http), clock));
}

ApiClient::ApiClient(ApiClientOptions options, std::unique_ptr<http::Client> http,
                     core::Clock& clock)
    : options_(std::move(options)), http_(std::move(http)), clock_(clock) {}

std::string ApiClient::Url(const std::string& path,
                           const std::map<std::string, std::string>& query) const {
  std::string url = options_.base_url + "/api/v2" + path;
  char separator = '?';
  for (const auto& [name, value] : query) {
    url += fmt::format("{}{}={}", separator, Encode(name), Encode(value));
    separator = '&';
  }
  return url;
}

ApiResult<json> ApiClient::Get(const std::string& path,
                               const std::map<std::string, std::string>& query,
                               Transcript* transcript) const {
  http::Request request;
  request.method = http::Method::kGet;
  request.url = Url(path, query);
  return Send(std::move(request), fmt::format("GET {}", path), transcript);
}

ApiResult<json> ApiClient::Patch(const std::string& path,
                                 const std::map<std::string, std::string>& query, const json& body,
                                 bool semantic, Transcript* transcript) const {
  http::Request request;
  request.method = http::Method::kPatch;
  request.url = Url(path, query);
  request.headers.Add("Content-Type",
                      semantic ? std::string(kSemanticPatchType) : "application/json");
  request.body = body.dump();
  request.idempotent = false;
  return Send(std::move(request), fmt::format("PATCH {}", path), transcript);
}

ApiResult<json> ApiClient::Send(http::Request request, std::string_view what,
                                Transcript* transcript) const {
  request.headers.Add("Authorization", options_.api_token);
  request.headers.Add("LD-API-Version", options_.api_version);
  request.headers.Add("Accept", "application/json");

  http::RedactionRules rules;
  rules.secret_values = {options_.api_token};
  http::Transcript attempts([this] { return clock_.Now(); }, rules);
  auto response = http_->Send(request, transcript != nullptr ? &attempts : nullptr);
  if (transcript != nullptr) {
    for (const http::TranscriptEntry& entry : attempts.Entries()) {
      json request_headers = json::array();
      for (const auto& [name, value] : entry.request_headers)
        request_headers.push_back({name, value});
      transcript->Add(entry.time, TranscriptKind::kRequest,
                      fmt::format("{} (attempt {})", what, entry.attempt),
                      json{{"method", entry.method},
                           {"url", entry.url},
                           {"attempt", entry.attempt},
                           {"headers", request_headers},
                           {"body", entry.request_body}});
      core::Time responded = entry.time + entry.timing.total;
      if (entry.status == 0) {
        transcript->Add(responded, TranscriptKind::kResponse,
                        fmt::format("{}: no response: {}", what, entry.error),
                        json{{"error", entry.error}});
        continue;
      }
      json response_headers = json::array();
      for (const auto& [name, value] : entry.response_headers) {
        response_headers.push_back({name, value});
      }
      transcript->Add(responded, TranscriptKind::kResponse,
                      fmt::format("{}: HTTP {}", what, entry.status),
                      json{{"status", entry.status},
                           {"headers", response_headers},
                           {"body", entry.response_body},
                           {"duration_us", entry.timing.total.count()}});
    }
  }

  if (!response) {
    ApiFailure failure;
    failure.kind = ApiFailure::Kind::kTransport;
    failure.message = response.error().message;
    failure.transport = response.error().kind;
    return std::unexpected(failure);
  }
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(FailureFromResponse(*response, clock_.Now()));
  }
  json body = json::parse(response->body, nullptr, false);
  if (body.is_discarded()) {
    ApiFailure failure;
    failure.status = response->status;
    failure.code = "malformed_response";
    failure.message = "the response is not JSON";
    return std::unexpected(failure);
  }
  return body;
}

}  // namespace backout::providers::launchdarkly
