#include "http/client.h"

#include <random>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/curl_transfer.h"
#include "http/tls_material.h"

namespace backout::http {

namespace {

using std::chrono::milliseconds;

std::unexpected<Error> InvalidOption(std::string message) {
  return std::unexpected(Error{ErrorKind::kInvalidArgument, std::move(message)});
}

Result<void> CheckLimits(const ClientOptions& options) {
  if (options.connect_timeout <= milliseconds(0)) {
    return InvalidOption(fmt::format("connect_timeout must be positive, got {} ms",
                                     options.connect_timeout.count()));
  }
  if (options.total_timeout <= milliseconds(0)) {
    return InvalidOption(
        fmt::format("total_timeout must be positive, got {} ms", options.total_timeout.count()));
  }
  const RetryPolicy& retry = options.retry;
  if (retry.max_attempts < 1) {
    return InvalidOption(fmt::format(
        "retry.max_attempts must be at least 1 (1 disables retries), got {}", retry.max_attempts));
  }
  if (retry.base_delay < milliseconds(0) || retry.max_delay < retry.base_delay) {
    return InvalidOption(fmt::format(
        "retry delays must satisfy 0 <= base_delay <= max_delay, got base_delay {} ms and "
        "max_delay {} ms",
        retry.base_delay.count(), retry.max_delay.count()));
  }
  if (retry.max_total < milliseconds(0)) {
    return InvalidOption(
        fmt::format("retry.max_total must not be negative, got {} ms", retry.max_total.count()));
  }
  if (options.max_response_bytes == 0) {
    return InvalidOption("max_response_bytes must be positive");
  }
  return {};
}

double RandomUnit() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

// The reason to repeat an attempt that failed in a way that may pass on a second try.
struct RetryCause {
  std::string reason;
  std::optional<milliseconds> retry_after;
};

class CurlClient final : public Client {
 public:
  CurlClient(ClientOptions options, internal::TlsMaterial tls)
      : options_(std::move(options)),
        redactor_(options_.redaction),
        transfer_(internal::TransferSettings{
            .tls = std::move(tls),
            .proxy = options_.proxy,
            .no_proxy = options_.no_proxy,
            .user_agent = options_.user_agent,
            .max_response_bytes = options_.max_response_bytes,
            .connect_timeout = options_.connect_timeout,
            .total_timeout = options_.total_timeout,
        }) {}

  using Client::Send;
  Result<Response> Send(const Request& request, Transcript* transcript) override;

 private:
  spdlog::logger& Logger() const {
    return options_.logger ? *options_.logger : *spdlog::default_logger_raw();
  }
  std::optional<RetryCause> RetryCauseOf(const internal::Attempt& attempt) const;
  Error TransportError(const Request& request, const std::string& url,
                       const internal::Attempt& attempt, int attempts) const;
  void Record(Transcript& transcript, TimePoint started, const Request& request, int number,
              const internal::Attempt& attempt) const;
  void LogAttempt(const Request& request, const std::string& url, int number, int max_attempts,
                  const internal::Attempt& attempt) const;

  const ClientOptions options_;
  const Redactor redactor_;
  internal::CurlTransfer transfer_;
};

Result<Response> CurlClient::Send(const Request& request, Transcript* transcript) {
  // Error messages and logs only ever see the redacted URL.
  std::string url = redactor_.RedactUrl(request.url);
  std::string_view method = MethodName(request.method);
  auto target = internal::ParseTarget(request.url);
  if (!target) {
    return InvalidOption(
        fmt::format("invalid URL for {} {}: {}", method, url, target.error().message));
  }
  if (auto checked = internal::CheckHeaders(request.headers); !checked) {
    return InvalidOption(fmt::format("{} {}: {}", method, url, checked.error().message));
  }
  for (const auto& timeout : {request.connect_timeout, request.total_timeout}) {
    if (timeout.has_value() && *timeout <= milliseconds(0)) {
      return InvalidOption(fmt::format("{} {}: request timeouts must be positive, got {} ms",
                                       method, url, timeout->count()));
    }
  }

  const RetryPolicy& policy = options_.retry;
  const bool idempotent = request.IsIdempotent();
  const int max_attempts = idempotent ? policy.max_attempts : 1;
  // Time spent so far, as libcurl measured each attempt plus the delays between them. Summing
  // these instead of reading a clock keeps the budget exact when a test replaces the sleep.
  milliseconds spent{0};

  for (int number = 1;; ++number) {
    TimePoint started = transcript != nullptr ? transcript->Now() : TimePoint{};
    internal::Attempt attempt = transfer_.Perform(request, *target);
    spent += std::chrono::ceil<milliseconds>(attempt.timing.total);
    if (transcript != nullptr) {
      Record(*transcript, started, request, number, attempt);
    }
    LogAttempt(request, url, number, max_attempts, attempt);

    std::optional<RetryCause> cause = RetryCauseOf(attempt);
    if (cause.has_value() && !idempotent) {
      Logger().debug("{}: not retrying {} {} after {}: the request is not idempotent",
                     options_.name, method, url, cause->reason);
    }
    bool retry = cause.has_value() && idempotent && number < max_attempts;
    if (retry) {
      milliseconds delay = FullJitter(BackoffCeiling(policy, number),
                                      options_.random_unit ? options_.random_unit() : RandomUnit());
      if (cause->retry_after.has_value()) {
        delay = std::max(delay, *cause->retry_after);
      }
      if (spent + delay > policy.max_total) {
        Logger().warn(
            "{}: not retrying {} {} after attempt {}/{} ({}): a {} ms delay would exceed the retry "
            "budget of {} ms, {} ms of which are spent",
            options_.name, method, url, number, max_attempts, cause->reason, delay.count(),
            policy.max_total.count(), spent.count());
        retry = false;
      } else {
        Logger().warn("{}: retrying {} {} in {} ms (attempt {}/{}) after {}", options_.name, method,
                      url, delay.count(), number + 1, max_attempts, cause->reason);
        if (options_.sleep) {
          options_.sleep(delay);
        } else {
          std::this_thread::sleep_for(delay);
        }
        spent += delay;
      }
    }
    if (retry) {
      continue;
    }

    if (attempt.code != CURLE_OK) {
      return std::unexpected(TransportError(request, url, attempt, number));
    }
    return Response{.status = attempt.status,
                    .headers = std::move(attempt.headers),
                    .body = std::move(attempt.body),
                    .timing = attempt.timing,
                    .attempts = number};
  }
}

std::optional<RetryCause> CurlClient::RetryCauseOf(const internal::Attempt& attempt) const {
  if (attempt.code != CURLE_OK) {
    if (!internal::IsRetryableCurlCode(attempt.code)) {
      return std::nullopt;
    }
    return RetryCause{.reason = redactor_.RedactText(attempt.failure), .retry_after = std::nullopt};
  }
  if (!IsRetryableStatus(attempt.status)) {
    return std::nullopt;
  }

  RetryCause cause{.reason = fmt::format("status {}", attempt.status), .retry_after = std::nullopt};
  if (auto header = attempt.headers.Get("Retry-After")) {
    // NOTE: without an injected `now` this reads the system clock, the module's only wall-clock
    // read. Durations come from libcurl's own measurements instead.
    TimePoint now = options_.now ? options_.now()
                                 : std::chrono::time_point_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now());
    cause.retry_after = ParseRetryAfter(*header, now);
    if (cause.retry_after.has_value()) {
      cause.reason += fmt::format(" with Retry-After {} ms", cause.retry_after->count());
    }
  }
  return cause;
}

Error CurlClient::TransportError(const Request& request, const std::string& url,
                                 const internal::Attempt& attempt, int attempts) const {
  std::string failure = redactor_.RedactText(attempt.failure);
  if (attempt.body_too_large) {
    failure = fmt::format("the response body exceeds max_response_bytes ({} bytes)",
                          options_.max_response_bytes);
  }
  std::string message = fmt::format("{} {} failed", MethodName(request.method), url);
  if (attempts > 1) {
    message += fmt::format(" after {} attempts", attempts);
  }
  message += fmt::format(": {}", failure);
  if (std::string_view hint = internal::HintFor(attempt.code);
      !hint.empty() && !attempt.body_too_large) {
    message += fmt::format("; {}", hint);
  }
  return Error{internal::ErrorKindOf(attempt.code), std::move(message)};
}

void CurlClient::Record(Transcript& transcript, TimePoint started, const Request& request,
                        int number, const internal::Attempt& attempt) const {
  TranscriptEntry entry;
  entry.time = started;
  entry.method = MethodName(request.method);
  entry.url = redactor_.RedactUrl(request.url);
  entry.attempt = number;
  entry.request_headers = redactor_.RedactHeaders(request.headers);
  std::string request_type = request.headers.Get("Content-Type").value_or("");
  entry.request_body = redactor_.RedactBody(request.body, request_type);
  entry.timing = attempt.timing;
  if (attempt.code == CURLE_OK) {
    entry.status = attempt.status;
    entry.response_headers = redactor_.RedactHeaders(attempt.headers);
    std::string response_type = attempt.headers.Get("Content-Type").value_or("");
    entry.response_body = redactor_.RedactBody(attempt.body, response_type);
  } else {
    entry.error = redactor_.RedactText(attempt.failure);
  }
  transcript.Record(std::move(entry));
}

void CurlClient::LogAttempt(const Request& request, const std::string& url, int number,
                            int max_attempts, const internal::Attempt& attempt) const {
  auto elapsed = std::chrono::duration_cast<milliseconds>(attempt.timing.total).count();
  if (attempt.code == CURLE_OK) {
    Logger().debug("{}: {} {} -> {} in {} ms (attempt {}/{})", options_.name,
                   MethodName(request.method), url, attempt.status, elapsed, number, max_attempts);
    return;
  }
  Logger().debug("{}: {} {} failed in {} ms (attempt {}/{}): {}", options_.name,
                 MethodName(request.method), url, elapsed, number, max_attempts,
                 redactor_.RedactText(attempt.failure));
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (auto checked = CheckLimits(options); !checked) {
    return std::unexpected(checked.error());
  }
  if (auto initialized = internal::InitializeLibcurl(); !initialized) {
    return std::unexpected(initialized.error());
  }
  auto tls = internal::LoadTlsMaterial(options);
  if (!tls) {
    return std::unexpected(tls.error());
  }

  if (options.insecure_skip_verify) {
    spdlog::logger& logger = options.logger ? *options.logger : *spdlog::default_logger_raw();
    logger.warn(
        "{}: insecure_skip_verify is set: server certificates and host names are not checked, so "
        "anyone on the network path can read and change this client's HTTPS traffic",
        options.name);
  }
  return std::make_unique<CurlClient>(std::move(options), std::move(*tls));
}

}  // namespace backout::http
