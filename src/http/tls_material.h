#pragma once

#include <string>

#include "http/client.h"
#include "http/error.h"

namespace backout::http::internal {

// TLS settings as libcurl takes them, after checking. Paths stay paths so libcurl rereads a
// rotated file on each new connection; inline PEM goes to libcurl as a blob.
struct TlsMaterial {
  std::string ca_file{};
  std::string ca_pem{};
  std::string cert_file{};
  std::string cert_pem{};
  std::string key_file{};  // the certificate file when it also contains the key
  std::string key_pem{};   // the certificate PEM when it also contains the key
  std::string key_password{};
  bool insecure_skip_verify = false;
};

// Reads and parses every configured CA, certificate and key with OpenSSL, so a missing file, bad
// PEM or mismatched key fails at creation with the option's name instead of at the first request.
Result<TlsMaterial> LoadTlsMaterial(const ClientOptions& options);

}  // namespace backout::http::internal
