#include "providers/codedeploy/api_client.h"

#include <array>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;

constexpr std::string_view kTargetPrefix = "CodeDeploy_20141006.";
constexpr std::string_view kContentType = "application/x-amz-json-1.1";
constexpr std::string_view kSigningName = "codedeploy";
// Throttled reads are tried this many times in all, waiting 200 ms, 400 ms, 800 ms between.
constexpr int kThrottledReadAttempts = 4;

struct ErrorHint {
  std::string_view type;
  core::ErrorCode code;
  std::string_view hint;
};

constexpr std::array kHints = {
    ErrorHint{"InvalidSignatureException", core::ErrorCode::kUnauthenticated,
              "the secret access key does not match the access key id, or the server clock is "
              "more than 5 minutes off; check the credentials and the clock"},
    ErrorHint{"IncompleteSignatureException", core::ErrorCode::kUnauthenticated,
              "CodeDeploy did not accept the request's signature format"},
    ErrorHint{"MissingAuthenticationTokenException", core::ErrorCode::kUnauthenticated,
              "the request carried no credentials; configure them"},
    ErrorHint{"UnrecognizedClientException", core::ErrorCode::kUnauthenticated,
              "the access key id or the session token is not valid; check the credentials or "
              "refresh the session token"},
    ErrorHint{"ExpiredTokenException", core::ErrorCode::kUnauthenticated,
              "the session token expired; refresh the temporary credentials"},
    ErrorHint{"AccessDeniedException", core::ErrorCode::kPermissionDenied,
              "the IAM identity lacks the permission for this CodeDeploy action; grant it"},
    ErrorHint{"ThrottlingException", core::ErrorCode::kUnavailable,
              "CodeDeploy throttled the call; try again later"},
    ErrorHint{"ApplicationDoesNotExistException", core::ErrorCode::kNotFound,
              "check `application` in the provider settings and the region"},
    ErrorHint{"DeploymentGroupDoesNotExistException", core::ErrorCode::kNotFound,
              "check `deployment_group` in the provider settings and the region"},
    ErrorHint{"DeploymentDoesNotExistException", core::ErrorCode::kNotFound,
              "the deployment id is unknown in this account and region"},
    ErrorHint{"RevisionDoesNotExistException", core::ErrorCode::kNotFound,
              "the revision is gone from its S3 bucket or GitHub repository; choose another "
              "target"},
    ErrorHint{"DeploymentConfigDoesNotExistException", core::ErrorCode::kNotFound,
              "check `deployment_config_name` in the provider settings"},
    ErrorHint{"DeploymentLimitExceededException", core::ErrorCode::kFailedPrecondition,
              "another deployment is running in the deployment group; wait for it or stop it"},
    ErrorHint{"DeploymentAlreadyCompletedException", core::ErrorCode::kFailedPrecondition,
              "the deployment finished before it could be stopped"},
    ErrorHint{"InvalidFileExistsBehaviorException", core::ErrorCode::kInvalidArgument,
              "set file_exists_behavior to DISALLOW, OVERWRITE or RETAIN"},
    ErrorHint{"InvalidRoleException", core::ErrorCode::kFailedPrecondition,
              "the deployment group's service role is missing or lacks permissions"},
};

const ErrorHint* FindHint(std::string_view type) {
  for (const ErrorHint& hint : kHints) {
    if (hint.type == type) return &hint;
  }
  return nullptr;
}

// Reduces `com.amazonaws.codedeploy#ThrottlingException` or `ThrottlingException:http://…` to
// the bare type, as AWS SDKs do.
std::string BareErrorType(std::string type) {
  if (size_t hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
  if (size_t colon = type.find(':'); colon != std::string::npos) type.resize(colon);
  return type;
}

ApiFailure FailureFromResponse(const http::Response& response) {
  ApiFailure failure;
  failure.kind = ApiFailure::Kind::kApi;
  failure.status = response.status;
  try {
    json body = json::parse(response.body);
    if (body.is_object()) {
      failure.type = body.value("__type", "");
      failure.message = body.value("message", body.value("Message", ""));
    }
  } catch (const json::parse_error&) {
    failure.message = response.body.substr(0, 200);
  }
  if (failure.type.empty()) failure.type = response.headers.Get("x-amzn-ErrorType").value_or("");
  failure.type = BareErrorType(failure.type);
  if (failure.type.empty()) failure.type = fmt::format("HTTP{}", response.status);
  return failure;
}

// Copies the attempts the HTTP client recorded, already redacted, into the provider transcript.
void AppendAttempts(const http::Transcript& source, std::string_view action,
                    Transcript& transcript) {
  for (const http::TranscriptEntry& entry : source.Entries()) {
    json request_headers = json::array();
    for (const auto& [name, value] : entry.request_headers) {
      request_headers.push_back({name, value});
    }
    transcript.Add(entry.time, TranscriptKind::kRequest,
                   fmt::format("{} {} (attempt {})", action, entry.url, entry.attempt),
                   json{{"action", action},
                        {"method", entry.method},
                        {"url", entry.url},
                        {"attempt", entry.attempt},
                        {"headers", request_headers},
                        {"body", entry.request_body}});

    core::Time responded = entry.time + entry.timing.total;
    if (entry.status == 0) {
      transcript.Add(responded, TranscriptKind::kResponse,
                     fmt::format("{}: no response: {}", action, entry.error),
                     json{{"action", action}, {"error", entry.error}});
      continue;
    }
    json response_headers = json::array();
    for (const auto& [name, value] : entry.response_headers) {
      response_headers.push_back({name, value});
    }
    transcript.Add(responded, TranscriptKind::kResponse,
                   fmt::format("{}: HTTP {}", action, entry.status),
                   json{{"action", action},
                        {"status", entry.status},
                        {"headers", response_headers},
                        {"body", entry.response_body},
                        {"duration_us", entry.timing.total.count()}});
  }
}

}  // namespace

bool ApiFailure::IsRetryable() const {
  return kind == Kind::kTransport || status >= 500 || type == "ThrottlingException" ||
         type == "RequestLimitExceeded";
}

std::string ApiFailure::Describe() const {
  if (kind == Kind::kTransport) {
    return fmt::format("no response from CodeDeploy ({}): {}", http::ErrorKindName(transport),
                       message);
  }
  const ErrorHint* hint = FindHint(type);
  std::string text = message.empty() ? type : fmt::format("{}: {}", type, message);
  if (hint != nullptr) text += fmt::format(" ({})", hint->hint);
  return text;
}

core::Error ApiFailure::ToError(std::string_view what) const {
  core::ErrorCode code = core::ErrorCode::kFailedPrecondition;
  if (kind == Kind::kTransport) {
    code = transport == http::ErrorKind::kTimeout           ? core::ErrorCode::kTimeout
           : transport == http::ErrorKind::kInvalidArgument ? core::ErrorCode::kInvalidArgument
                                                            : core::ErrorCode::kUnavailable;
  } else if (const ErrorHint* hint = FindHint(type)) {
    code = hint->code;
  } else if (status >= 500) {
    code = core::ErrorCode::kUnavailable;
  }
  return core::Error{code, fmt::format("CodeDeploy {} failed: {}", what, Describe())};
}

core::Result<std::unique_ptr<ApiClient>> ApiClient::Create(ApiClientOptions options,
                                                           core::Clock& clock) {
  http::ClientOptions http_options;
  http_options.total_timeout = options.request_timeout;
  http_options.connect_timeout =
      std::min(options.request_timeout, std::chrono::milliseconds(10'000));
  http_options.name = options.log_name;
  http_options.user_agent = "backout codedeploy-provider";
  http_options.now = [&clock] { return clock.Now(); };
  http_options.redaction.secret_values = {options.credentials.secret_access_key,
                                          options.credentials.session_token};
  auto http = http::Client::Create(std::move(http_options));
  if (!http) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot create the CodeDeploy HTTP client: {}", http.error().message);
  }
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(options), std::move(*http), clock));
}

ApiClient::ApiClient(ApiClientOptions options, std::unique_ptr<http::Client> http,
                     core::Clock& clock)
    : options_(std::move(options)), http_(std::move(http)), clock_(clock) {}

ApiResult<json> ApiClient::Call(std::string_view action, const json& input, bool idempotent,
                                Transcript* transcript) const {
  std::string body = input.dump();
  auto delay = std::chrono::milliseconds(200);
  for (int attempt = 1;; ++attempt) {
    ApiResult<json> result = CallOnce(action, body, idempotent, transcript);
    if (result || !idempotent || !result.error().Is("ThrottlingException") ||
        attempt == kThrottledReadAttempts) {
      return result;
    }
    spdlog::info("{}: {} throttled; retrying in {} ms", options_.log_name, action, delay.count());
    std::this_thread::sleep_for(delay);
    delay *= 2;
  }
}

ApiResult<json> ApiClient::CallOnce(std::string_view action, const std::string& body,
                                    bool idempotent, Transcript* transcript) const {
  http::Request request;
  request.method = http::Method::kPost;
  request.url = options_.endpoint + "/";
  request.headers.Add("Content-Type", std::string(kContentType));
  request.headers.Add("X-Amz-Target", fmt::format("{}{}", kTargetPrefix, action));
  request.body = body;
  request.idempotent = idempotent;
  auto signature = http::SignRequest(request, options_.credentials,
                                     http::SigV4Options{options_.region, std::string(kSigningName)},
                                     clock_.Now());
  if (!signature) {
    return std::unexpected(ApiFailure{ApiFailure::Kind::kTransport, 0, "",
                                      signature.error().message,
                                      http::ErrorKind::kInvalidArgument});
  }

  http::Transcript attempts([this] { return clock_.Now(); });
  auto response = http_->Send(request, transcript != nullptr ? &attempts : nullptr);
  if (transcript != nullptr) AppendAttempts(attempts, action, *transcript);
  if (!response) {
    return std::unexpected(ApiFailure{ApiFailure::Kind::kTransport, 0, "", response.error().message,
                                      response.error().kind});
  }
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(FailureFromResponse(*response));
  }
  if (response->body.empty()) return json::object();
  try {
    return json::parse(response->body);
  } catch (const json::parse_error& error) {
    return std::unexpected(ApiFailure{ApiFailure::Kind::kApi, response->status, "MalformedResponse",
                                      fmt::format("the response is not JSON: {}", error.what())});
  }
}

}  // namespace backout::providers::codedeploy
