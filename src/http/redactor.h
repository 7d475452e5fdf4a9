#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/headers.h"

namespace backout::http {

// The text that replaces every secret.
inline constexpr std::string_view kRedacted = "[REDACTED]";

// Secrets to hide beyond the built-in lists. Names compare case-insensitively.
struct RedactionRules {
  // Header fields whose values are hidden, in addition to Authorization, Proxy-Authorization,
  // Cookie, Set-Cookie and X-Amz-Security-Token.
  std::vector<std::string> headers{};
  // JSON object keys whose values (of any type) are hidden at any depth of a JSON body.
  std::vector<std::string> json_fields{};
  // Parameters hidden in URL query strings and fragments and in form-encoded bodies, in addition
  // to access_token (RFC 6750), X-Amz-Signature and X-Amz-Security-Token (AWS presigned URLs).
  std::vector<std::string> query_params{};
  // Literal secrets (tokens, passwords) replaced wherever they appear: as given, percent-encoded,
  // form-encoded and JSON-escaped. Empty values are ignored.
  std::vector<std::string> secret_values{};
};

// Removes secrets from URLs, headers and bodies before they are stored or logged. Immutable after
// construction, so one instance may be shared between threads.
class Redactor {
 public:
  Redactor() : Redactor(RedactionRules{}) {}
  explicit Redactor(const RedactionRules& rules);

  // Hides the user information (user:password@), the secret query and fragment parameters and
  // every literal secret.
  std::string RedactUrl(std::string_view url) const;

  // Hides the values of sensitive fields and every literal secret in the others.
  Headers RedactHeaders(const Headers& headers) const;

  // Hides the secret fields of a JSON body, or of a form-encoded body when `content_type` is
  // application/x-www-form-urlencoded, and every literal secret. Only the hidden values change, so
  // the body keeps its formatting.
  std::string RedactBody(std::string_view body, std::string_view content_type) const;

  // Replaces every literal secret in free text such as an error message.
  std::string RedactText(std::string_view text) const;

  bool IsSensitiveHeader(std::string_view name) const;

 private:
  bool IsSecretParam(std::string_view encoded_name) const;
  bool IsSecretJsonField(std::string_view key) const;
  std::string RedactParams(std::string_view params) const;
  std::string RedactJson(std::string_view body) const;

  std::vector<std::string> headers_;
  std::vector<std::string> json_fields_;
  std::vector<std::string> query_params_;
  std::vector<std::string> secret_forms_;  // longest first, so a secret inside another goes last
};

}  // namespace backout::http
