#pragma once

#include <filesystem>
#include <string>

namespace backout::http::testing {

// A throwaway certificate authority with one server certificate (for 127.0.0.1 and localhost) and
// one client certificate (CN backout-test-client), made with OpenSSL when the test runs. Keys are
// ECDSA P-256; certificates are valid from an hour ago for a day.
struct TestPki {
  std::string ca_cert_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
  std::string client_cert_pem;
  std::string client_key_pem;

  // The same PEM texts written as files by WriteTo.
  std::filesystem::path ca_cert_file;
  std::filesystem::path server_cert_file;
  std::filesystem::path server_key_file;
  std::filesystem::path client_cert_file;
  std::filesystem::path client_key_file;

  // Writes ca.pem, server.pem, server-key.pem, client.pem and client-key.pem into `folder`.
  void WriteTo(const std::filesystem::path& folder);
};

// Makes a new CA and its certificates; aborts the test binary if OpenSSL fails.
TestPki MakeTestPki();

}  // namespace backout::http::testing
