#include "providers/kubernetes/api_client.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

// An exec credential is renewed this long before it expires.
constexpr auto kExpiryMargin = std::chrono::seconds(10);

core::ErrorCode ToCoreCode(http::ErrorKind kind) {
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

std::string Trim(std::string text) {
  size_t end = text.find_last_not_of(" \t\r\n");
  text.erase(end == std::string::npos ? 0 : end + 1);
  size_t begin = text.find_first_not_of(" \t\r\n");
  return begin == std::string::npos ? "" : text.substr(begin);
}

}  // namespace

std::string ApiResponse::ErrorMessage() const {
  if (body.is_object() && body.contains("message") && body["message"].is_string()) {
    return body["message"].get<std::string>();
  }
  std::string excerpt = text.size() > 300 ? text.substr(0, 300) + "…" : text;
  return fmt::format("HTTP {}{}{}", status, excerpt.empty() ? "" : ": ", excerpt);
}

ApiClient::ApiClient(ClusterAccess access, core::Clock& clock,
                     std::chrono::milliseconds request_timeout)
    : access_(std::move(access)), clock_(clock), request_timeout_(request_timeout) {}

core::Result<std::unique_ptr<ApiClient>> ApiClient::Create(
    ClusterAccess access, core::Clock& clock, std::chrono::milliseconds request_timeout) {
  std::unique_ptr<ApiClient> client(new ApiClient(std::move(access), clock, request_timeout));
  auto http_client = client->MakeHttpClient("", "");
  if (!http_client) return std::unexpected(http_client.error());
  client->client_ = std::move(*http_client);
  return client;
}

core::Result<std::shared_ptr<http::Client>> ApiClient::MakeHttpClient(
    const std::string& cert_pem, const std::string& key_pem) const {
  http::ClientOptions options;
  options.ca_file = access_.ca_file;
  options.ca_pem = access_.ca_pem;
  options.insecure_skip_verify = access_.insecure_skip_tls_verify;
  if (!cert_pem.empty()) {
    options.client_cert_pem = cert_pem;
    options.client_key_pem = key_pem;
  } else {
    options.client_cert_file = access_.client_cert_file;
    options.client_cert_pem = access_.client_cert_pem;
    options.client_key_file = access_.client_key_file;
    options.client_key_pem = access_.client_key_pem;
  }
  options.total_timeout = request_timeout_;
  options.user_agent = "backout/0.1 (kubernetes provider)";
  options.name = "kubernetes";
  options.redaction = Redaction();
  core::Clock* clock = &clock_;
  options.now = [clock] { return clock->Now(); };
  auto created = http::Client::Create(std::move(options));
  if (!created) {
    return std::unexpected(core::Error{
        ToCoreCode(created.error().kind),
        fmt::format("kubeconfig context \"{}\": {}", access_.context, created.error().message)});
  }
  return std::shared_ptr<http::Client>(std::move(*created));
}

http::RedactionRules ApiClient::Redaction() const {
  http::RedactionRules rules;
  if (!access_.token.empty()) rules.secret_values.push_back(access_.token);
  rules.headers.push_back("Impersonate-Extra");
  return rules;
}

core::Result<ApiClient::Credential> ApiClient::CurrentCredential(bool refresh) const {
  if (!access_.token.empty()) return Credential{access_.token, client_};
  if (!access_.token_file.empty()) {
    std::ifstream file(access_.token_file);
    std::stringstream text;
    text << file.rdbuf();
    std::string token = Trim(text.str());
    if (!file || token.empty()) {
      return core::MakeError(core::ErrorCode::kUnauthenticated,
                             "kubeconfig context \"{}\": tokenFile {} cannot be read or is empty",
                             access_.context, access_.token_file);
    }
    return Credential{token, client_};
  }
  if (!access_.exec) return Credential{"", client_};

  std::lock_guard lock(exec_mutex_);
  bool expired = exec_credential_ && exec_credential_->expires_at &&
                 clock_.Now() + kExpiryMargin >= *exec_credential_->expires_at;
  if (refresh || !exec_credential_ || expired) {
    auto credential = RunExecPlugin(*access_.exec, access_, request_timeout_);
    if (!credential) {
      return std::unexpected(credential.error().WithContext(
          fmt::format("kubeconfig context \"{}\"", access_.context)));
    }
    exec_client_ = client_;
    if (credential->token.empty()) {
      auto client = MakeHttpClient(credential->client_cert_pem, credential->client_key_pem);
      if (!client) return std::unexpected(client.error());
      exec_client_ = std::move(*client);
    }
    exec_credential_ = std::move(*credential);
    spdlog::info("provider.kubernetes: context={} obtained a credential from exec plugin {}",
                 access_.context, access_.exec->command);
  }
  return Credential{exec_credential_->token, exec_client_};
}

core::Result<ApiResponse> ApiClient::Send(http::Method method, std::string_view path,
                                          std::string_view content_type, std::string body,
                                          const CallContext& call) const {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto credential = CurrentCredential(attempt > 0);
    if (!credential) return std::unexpected(credential.error());

    http::Request request;
    request.method = method;
    request.url = access_.server + std::string(path);
    request.headers.Add("Accept", "application/json");
    if (!content_type.empty()) request.headers.Add("Content-Type", std::string(content_type));
    if (!credential->token.empty()) {
      request.headers.Add("Authorization", "Bearer " + credential->token);
    }
    if (!call.impersonate_user.empty()) {
      request.headers.Add("Impersonate-User", call.impersonate_user);
    }
    request.body = body;

    auto response = credential->client->Send(request, call.transcript);
    if (!response) {
      return std::unexpected(
          core::Error{ToCoreCode(response.error().kind), response.error().message});
    }
    // An exec credential may have been revoked before its expiry: ask the plugin once more.
    if (response->status == 401 && access_.exec && attempt == 0) continue;

    ApiResponse result;
    result.status = response->status;
    if (!response->body.empty()) {
      try {
        result.body = json::parse(response->body);
      } catch (const json::parse_error&) {
        result.text = response->body;
      }
    }
    return result;
  }
  return core::MakeError(core::ErrorCode::kInternal, "unreachable: both attempts returned");
}

core::Result<ApiResponse> ApiClient::Get(std::string_view path, const CallContext& call) const {
  return Send(http::Method::kGet, path, "", "", call);
}

core::Result<ApiResponse> ApiClient::Patch(std::string_view path, std::string_view content_type,
                                           std::string body, const CallContext& call) const {
  return Send(http::Method::kPatch, path, content_type, std::move(body), call);
}

}  // namespace backout::providers::kubernetes
