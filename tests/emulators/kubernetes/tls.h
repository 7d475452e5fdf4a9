#pragma once

#include <string>

// Certificates for the emulator's HTTPS endpoint, made in memory with OpenSSL when it starts.
namespace backout::emulators::kubernetes {

struct TlsMaterial {
  std::string ca_cert_pem;      // self-signed CA that issued the two certificates below
  std::string server_cert_pem;  // for IP 127.0.0.1 and DNS localhost
  std::string server_key_pem;
  std::string client_cert_pem;  // a client certificate whose CN the server takes as the user
  std::string client_key_pem;
};

// Makes a fresh CA, server and client certificate (ECDSA P-256, valid from an hour ago for a
// day). Returns an empty `ca_cert_pem` when OpenSSL fails.
TlsMaterial MakeTlsMaterial(const std::string& client_common_name);

}  // namespace backout::emulators::kubernetes
