#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/client.h"
#include "http/transcript.h"
#include "providers/kubernetes/exec_credential.h"
#include "providers/kubernetes/kubeconfig.h"

namespace backout::providers::kubernetes {

// A response of the Kubernetes API: its status and its JSON body (null when the body was empty
// or not JSON, in which case `text` contains it).
struct ApiResponse {
  int status = 0;
  nlohmann::json body;
  std::string text;

  bool ok() const { return status >= 200 && status < 300; }
  // The message of a metav1.Status body, or the text, for quoting in an error.
  std::string ErrorMessage() const;
};

// Per-call inputs: whom to impersonate, and where to record the exchange.
struct CallContext {
  std::string impersonate_user;            // sent as Impersonate-User when not empty
  http::Transcript* transcript = nullptr;  // records the request and response, redacted
};

// Calls the Kubernetes API of one kubeconfig context over HTTPS, with the context's CA and
// credentials: a token, a token file (reread on every call so a rotated token is used), a client
// certificate, or an exec plugin (run when its credential is missing or expired, and once more
// after a 401). Thread-safe. Credentials go only into request headers, which transcripts and
// logs redact.
class ApiClient {
 public:
  static core::Result<std::unique_ptr<ApiClient>> Create(ClusterAccess access, core::Clock& clock,
                                                         std::chrono::milliseconds request_timeout);

  // Sends GET `path` (with its query). Returns the response whatever its status; fails only
  // when no response arrived or no credential could be obtained.
  core::Result<ApiResponse> Get(std::string_view path, const CallContext& call) const;

  // Sends PATCH `path` once, never retried, because a repeated patch could overwrite a change
  // the controller made in between.
  core::Result<ApiResponse> Patch(std::string_view path, std::string_view content_type,
                                  std::string body, const CallContext& call) const;

  const ClusterAccess& access() const { return access_; }

  // The redaction rules for transcripts of this client's calls.
  http::RedactionRules Redaction() const;

 private:
  ApiClient(ClusterAccess access, core::Clock& clock, std::chrono::milliseconds request_timeout);

  struct Credential {
    std::string token;                     // empty when the client certificate authenticates
    std::shared_ptr<http::Client> client;  // the client that carries the certificate, if any
  };

  core::Result<ApiResponse> Send(http::Method method, std::string_view path,
                                 std::string_view content_type, std::string body,
                                 const CallContext& call) const;
  core::Result<Credential> CurrentCredential(bool refresh) const;
  core::Result<std::shared_ptr<http::Client>> MakeHttpClient(const std::string& cert_pem,
                                                             const std::string& key_pem) const;

  ClusterAccess access_;
  core::Clock& clock_;
  std::chrono::milliseconds request_timeout_;
  std::shared_ptr<http::Client> client_;  // with the kubeconfig's own client certificate, if any

  mutable std::mutex exec_mutex_;
  mutable std::optional<ExecCredential> exec_credential_;
  mutable std::shared_ptr<http::Client> exec_client_;
};

}  // namespace backout::providers::kubernetes
