#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "http/error.h"
#include "http/headers.h"
#include "http/message.h"
#include "http/redactor.h"
#include "http/retry.h"
#include "http/transcript.h"

namespace backout::http {

struct ClientOptions {
  // Trusted CAs for HTTPS, as a PEM file or inline PEM text (at most one of the two). When either
  // is set only those CAs are trusted; otherwise the system's trust store is used.
  std::string ca_file{};
  std::string ca_pem{};

  // Client certificate for servers that require one, each as a PEM file or inline PEM text (at most
  // one of the two). The key may be left out when the certificate's PEM also contains it.
  std::string client_cert_file{};
  std::string client_cert_pem{};
  std::string client_key_file{};
  std::string client_key_pem{};
  std::string client_key_password{};  // for an encrypted key

  // Accepts any server certificate and host name. For tests and emergencies only: it is logged as
  // a warning when the client is created.
  bool insecure_skip_verify = false;

  // Limits for one attempt; a Request may replace them.
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{60'000};

  // The proxy URL, or "" for none. Unset means libcurl reads the environment: http_proxy,
  // https_proxy (or HTTPS_PROXY), all_proxy and no_proxy; uppercase HTTP_PROXY is ignored. Loopback
  // hosts (localhost, 127.0.0.0/8, ::1) then always bypass the environment's proxy.
  std::optional<std::string> proxy{};
  // Hosts that bypass the proxy, in no_proxy syntax; replaces the environment's no_proxy.
  std::optional<std::string> no_proxy{};

  RetryPolicy retry{};
  std::string user_agent = "backout";
  // A larger response body fails the call.
  size_t max_response_bytes = 64 * 1024 * 1024;

  // Secrets hidden in log lines and error messages. A Transcript has its own rules.
  RedactionRules redaction{};
  // Component name that starts every log line, such as "kubernetes" or "cli".
  std::string name = "http";
  // Where log lines go; null means spdlog's default logger at the time of each line.
  std::shared_ptr<spdlog::logger> logger{};

  // Waits between attempts. Default: std::this_thread::sleep_for. Tests record the delays instead.
  std::function<void(std::chrono::milliseconds)> sleep{};
  // A random number in [0, 1) for the jitter. Default: a per-thread Mersenne Twister.
  std::function<double()> random_unit{};
  // The current time, used only to turn a Retry-After date into a delay. Default: the system
  // clock; the composition root passes `core::Clock::Now`.
  std::function<TimePoint()> now{};
};

// Outbound HTTP over libcurl. Thread-safe: any number of threads may call Send at once, each
// transfer on its own libcurl handle, and idle handles keep their connections for reuse.
class Client {
 public:
  // Checks the options (timeouts, retry policy, readable and parseable CA and client certificate,
  // matching key) and returns kInvalidArgument naming the bad option.
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);

  virtual ~Client() = default;

  // Sends the request and returns the final response whatever its status: a 4xx or 5xx is a
  // Response, not an Error. Idempotent requests are retried on connection errors, timeouts, 408,
  // 429 and retryable 5xx (see IsRetryableStatus) within the retry policy. Other requests make one
  // attempt, always on a new connection, so libcurl cannot resend them either. Returns an Error
  // only when no response arrived: kInvalidArgument for a bad URL or header, kTimeout, or
  // kUnavailable. Each attempt is recorded in `transcript` when it is not null.
  virtual Result<Response> Send(const Request& request, Transcript* transcript) = 0;

  Result<Response> Send(const Request& request) { return Send(request, nullptr); }
};

}  // namespace backout::http
