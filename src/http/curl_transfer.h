#pragma once

#include <curl/curl.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/curl_library.h"
#include "http/error.h"
#include "http/message.h"
#include "http/tls_material.h"

namespace backout::http::internal {

// The parts of a request URL the client decides on before sending.
struct Target {
  std::string host{};
  bool loopback = false;  // localhost, *.localhost, 127.0.0.0/8 or ::1
};

// Loads and initializes libcurl once per process, and returns the same result on later calls.
Result<void> InitializeLibcurl();

// Checks that `url` is an absolute http or https URL that libcurl can parse. The error message
// leaves the URL out, because it may hold secrets; the caller adds the redacted URL.
Result<Target> ParseTarget(std::string_view url);

// Checks header names and values for characters that would end or inject a header line.
Result<void> CheckHeaders(const Headers& headers);

// Settings shared by every transfer of one client.
struct TransferSettings {
  TlsMaterial tls{};
  std::optional<std::string> proxy{};
  std::optional<std::string> no_proxy{};
  std::string user_agent{};
  size_t max_response_bytes = 0;
  std::chrono::milliseconds connect_timeout{0};
  std::chrono::milliseconds total_timeout{0};
};

// The outcome of one attempt: a response (code CURLE_OK) or libcurl's failure.
struct Attempt {
  CURLcode code = CURLE_OK;
  std::string failure{};  // libcurl's description of a failure, with its detail message
  int status = 0;
  Headers headers{};
  std::string body{};
  bool body_too_large = false;
  Timing timing{};
};

// Runs single attempts on pooled libcurl easy handles. Thread-safe.
class CurlTransfer {
 public:
  explicit CurlTransfer(TransferSettings settings);
  ~CurlTransfer();
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  Attempt Perform(const Request& request, const Target& target);

  const TransferSettings& settings() const { return settings_; }

 private:
  CURL* AcquireHandle();
  void ReleaseHandle(CURL* handle);
  void Configure(CURL* handle, const Request& request, const Target& target) const;

  const TransferSettings settings_;
  const Libcurl* libcurl_ = nullptr;  // null when libcurl failed to load
  std::mutex mutex_;
  std::vector<CURL*> idle_handles_;
};

// Whether repeating a request that failed with `code` may succeed.
bool IsRetryableCurlCode(CURLcode code);

ErrorKind ErrorKindOf(CURLcode code);

// What the caller should check after a failure with `code`.
std::string_view HintFor(CURLcode code);

}  // namespace backout::http::internal
