#include "providers/unleash/admin_client.h"

#include <fmt/format.h>

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

ApiFailure FailureFromResponse(const http::Response& response) {
  ApiFailure failure;
  failure.status = response.status;
  try {
    json body = json::parse(response.body);
    if (body.is_object()) {
      failure.name = body.value("name", "");
      failure.message = body.value("message", "");
    }
  } catch (const json::parse_error&) {
    failure.message = response.body.substr(0, 300);
  }
  if (failure.name.empty()) failure.name = fmt::format("HTTP{}", response.status);
  return failure;
}

// Copies the redacted attempts into the provider transcript.
void AppendAttempts(const http::Transcript& source, Transcript& transcript) {
  for (const http::TranscriptEntry& entry : source.Entries()) {
    json request_headers = json::array();
    for (const auto& [name, value] : entry.request_headers)
      request_headers.push_back({name, value});
    std::string line = fmt::format("{} {}", entry.method, entry.url);
    transcript.Add(entry.time, TranscriptKind::kRequest,
                   fmt::format("{} (attempt {})", line, entry.attempt),
                   json{{"method", entry.method},
                        {"url", entry.url},
                        {"attempt", entry.attempt},
                        {"headers", request_headers},
                        {"body", entry.request_body}});
    core::Time responded = entry.time + entry.timing.total;
    if (entry.status == 0) {
      transcript.Add(responded, TranscriptKind::kResponse,
                     fmt::format("{}: no response: {}", line, entry.error),
                     json{{"error", entry.error}});
      continue;
    }
    transcript.Add(responded, TranscriptKind::kResponse,
                   fmt::format("{}: HTTP {}", line, entry.status),
                   json{{"status", entry.status},
                        {"body", entry.response_body},
                        {"duration_us", entry.timing.total.count()}});
  }
}

}  // namespace

bool ApiFailure::NeedsChangeRequest() const {
  return !transport && status == 403 && message.find("SKIP_CHANGE_REQUEST") != std::string::npos;
}

bool ApiFailure::IsArchived() const {
  return !transport && status == 400 && name == "ArchivedFeatureError";
}

bool ApiFailure::IsPatchTestFailure() const {
  return !transport && message.find("TEST_OPERATION_FAILED") != std::string::npos;
}

std::string ApiFailure::Describe() const {
  if (transport) {
    return fmt::format("no response from Unleash ({}): {}", http::ErrorKindName(transport_kind),
                       message);
  }
  std::string text = fmt::format("HTTP {} {}: {}", status, name, message);
  if (status == 401) text += " (the API token is invalid or expired; check credentials.api_token)";
  return text;
}

core::Error ApiFailure::ToError(std::string_view what) const {
  core::ErrorCode code = core::ErrorCode::kFailedPrecondition;
  if (transport) {
    code = transport_kind == http::ErrorKind::kTimeout ? core::ErrorCode::kTimeout
                                                       : core::ErrorCode::kUnavailable;
  } else if (status == 401) {
    code = core::ErrorCode::kUnauthenticated;
  } else if (status == 403) {
    code = core::ErrorCode::kPermissionDenied;
  } else if (status == 404) {
    code = core::ErrorCode::kNotFound;
  } else if (status == 429 || status >= 500) {
    code = core::ErrorCode::kUnavailable;
  }
  return core::Error{code, fmt::format("Unleash {} failed: {}", what, Describe())};
}

std::string EncodeComponent(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

core::Result<std::unique_ptr<AdminClient>> AdminClient::Create(std::string base_url,
                                                               std::string token,
                                                               std::chrono::milliseconds timeout,
                                                               std::string log_name,
                                                               core::Clock& clock) {
  http::ClientOptions options;
  options.total_timeout = timeout;
  options.connect_timeout = std::min(timeout, std::chrono::milliseconds(10'000));
  options.name = std::move(log_name);
  options.user_agent = "backout unleash-provider";
  options.now = [&clock] { return clock.Now(); };
  options.redaction.secret_values = {token};
  auto http = http::Client::Create(std::move(options));
  if (!http) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot create the Unleash HTTP client: {}", http.error().message);
  }
  return std::unique_ptr<AdminClient>(
      new AdminClient(std::move(base_url), std::move(token), std::move(*http), clock));
}

AdminClient::AdminClient(std::string base_url, std::string token,
                         std::unique_ptr<http::Client> http, core::Clock& clock)
    : base_url_(std::move(base_url)),
      token_(std::move(token)),
      http_(std::move(http)),
      clock_(clock) {}

ApiResult<json> AdminClient::Call(http::Method method, const std::string& path, const json& body,
                                  bool idempotent, Transcript* transcript) const {
  http::Request request;
  request.method = method;
  request.url = base_url_ + path;
  request.headers.Add("Authorization", token_);
  request.headers.Add("Accept", "application/json");
  if (!body.is_null()) {
    request.headers.Add("Content-Type", "application/json");
    request.body = body.dump();
  }
  request.idempotent = idempotent;

  http::Transcript attempts([this] { return clock_.Now(); },
                            http::RedactionRules{.secret_values = {token_}});
  auto response = http_->Send(request, transcript != nullptr ? &attempts : nullptr);
  if (transcript != nullptr) AppendAttempts(attempts, *transcript);
  if (!response) {
    ApiFailure failure;
    failure.transport = true;
    failure.message = response.error().message;
    failure.transport_kind = response.error().kind;
    return std::unexpected(failure);
  }
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(FailureFromResponse(*response));
  }
  if (response->body.empty()) return json::object();
  try {
    return json::parse(response->body);
  } catch (const json::parse_error& error) {
    return std::unexpected(
        ApiFailure{.status = response->status,
                   .name = "MalformedResponse",
                   .message = fmt::format("the response is not JSON: {}", error.what())});
  }
}

}  // namespace backout::providers::unleash
