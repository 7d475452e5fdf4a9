#include "emulators/codedeploy/emulator.h"

#include <httplib.h>
#include <openssl/crypto.h>

#include <random>

#include <fmt/format.h>

#include "http/headers.h"
#include "http/sigv4.h"

namespace backout::emulators::codedeploy {
namespace {

using nlohmann::json;

constexpr std::string_view kTargetPrefix = "CodeDeploy_20141006.";
constexpr std::string_view kContentType = "application/x-amz-json-1.1";
constexpr std::string_view kSigningName = "codedeploy";
// AWS rejects a request that reaches it more than five minutes from its X-Amz-Date (IAM user
// guide, "Signing AWS API requests").
constexpr auto kMaxClockSkew = std::chrono::minutes(5);

Time Now() { return std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now()); }

ApiError SignatureError(std::string message) {
  return ApiError{400, "InvalidSignatureException", std::move(message)};
}

std::optional<Time> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  auto number = [&text](size_t at, size_t size) {
    int value = 0;
    for (size_t i = at; i < at + size; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  int year = number(0, 4), month = number(4, 2), day = number(6, 2);
  int hour = number(9, 2), minute = number(11, 2), second = number(13, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
    return std::nullopt;
  }
  std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                   std::chrono::day(day)};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

std::string RequestId() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", random() & 0xffffffff,
                     random() & 0xffff, random() & 0xffff, random() & 0xffff,
                     random() & 0xffffffffffff);
}

void Reply(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_header("x-amzn-RequestId", RequestId());
  response.set_content(body.dump(), std::string(kContentType));
}

void ReplyError(httplib::Response& response, const ApiError& error) {
  json body{{"__type", error.type}};
  if (!error.message.empty()) body["message"] = error.message;
  Reply(response, error.status, body);
}

}  // namespace

std::expected<std::unique_ptr<Emulator>, std::string> Emulator::Create(const json& state) {
  auto model = Model::FromJson(state, Now());
  if (!model) return std::unexpected(model.error());

  std::unique_ptr<Emulator> emulator(new Emulator());
  emulator->model_ = std::make_unique<Model>(std::move(*model));
  emulator->region_ = state.value("region", emulator->region_);
  for (const json& credential : state.value("credentials", json::array())) {
    AcceptedCredential accepted{credential.value("accessKeyId", ""),
                                credential.value("secretAccessKey", ""),
                                credential.value("sessionToken", "")};
    if (accepted.access_key_id.empty() || accepted.secret_access_key.empty()) {
      return std::unexpected("credentials: each needs accessKeyId and secretAccessKey");
    }
    emulator->credentials_.push_back(std::move(accepted));
  }
  if (emulator->credentials_.empty()) {
    emulator->credentials_.push_back(AcceptedCredential{std::string(kExampleAccessKeyId),
                                                        std::string(kExampleSecretAccessKey), ""});
  }
  return emulator;
}

Emulator::~Emulator() { Stop(); }

std::expected<void, std::string> Emulator::Start(int port) {
  server_ = std::make_unique<httplib::Server>();
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_timeout(1);
  server_->Post("/", [this](const httplib::Request& request, httplib::Response& response) {
    HandleApi(request, response);
  });
  for (std::string name :
       {"fail-instance", "revision-behavior", "stall", "unstall", "fail-call", "delay-response"}) {
    server_->Post("/_emulator/" + name,
                  [this, name](const httplib::Request& request, httplib::Response& response) {
                    HandleHook(request, response, name);
                  });
  }
  server_->Get("/_emulator/state", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(Dump().dump(2), "application/json");
  });
  server_->Get("/_emulator/calls", [this](const httplib::Request&, httplib::Response& response) {
    std::lock_guard lock(mutex_);
    response.set_content(json(call_counts_).dump(), "application/json");
  });

  if (port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = server_->bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (port_ <= 0) return std::unexpected(fmt::format("cannot bind 127.0.0.1:{}", port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return {};
}

void Emulator::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string Emulator::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

std::optional<ApiError> Emulator::Authenticate(const httplib::Request& request, Time now) const {
  // Step 1: the Authorization header and the key it names.
  std::string header = request.get_header_value("Authorization");
  if (header.empty()) {
    return ApiError{400, "MissingAuthenticationTokenException", "Missing Authentication Token"};
  }
  auto authorization = http::ParseSigV4Authorization(header);
  if (!authorization) {
    return ApiError{400, "IncompleteSignatureException", authorization.error().message};
  }
  const AcceptedCredential* credential = nullptr;
  for (const AcceptedCredential& candidate : credentials_) {
    if (candidate.access_key_id == authorization->access_key_id) credential = &candidate;
  }
  if (credential == nullptr ||
      request.get_header_value("X-Amz-Security-Token") != credential->session_token) {
    return ApiError{400, "UnrecognizedClientException",
                    "The security token included in the request is invalid."};
  }

  // Step 2: the date and the credential scope.
  std::string amz_date = request.get_header_value("X-Amz-Date");
  std::optional<Time> signed_at = ParseAmzDate(amz_date);
  if (!signed_at) {
    return ApiError{400, "IncompleteSignatureException",
                    "Authorization header requires existence of a valid 'X-Amz-Date' header."};
  }
  if (amz_date.substr(0, 8) != authorization->date) {
    return SignatureError(fmt::format(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '{}' != '{}', from '{}'.",
        authorization->date, amz_date.substr(0, 8), amz_date));
  }
  if (authorization->region != region_) {
    return SignatureError(fmt::format("Credential should be scoped to a valid region, not '{}'.",
                                      authorization->region));
  }
  if (authorization->service != kSigningName) {
    return SignatureError(
        fmt::format("Credential should be scoped to correct service: '{}'.", kSigningName));
  }
  if (*signed_at + kMaxClockSkew < now) {
    return SignatureError(fmt::format("Signature expired: {} is now earlier than {} ({} - 5 min.)",
                                      amz_date, http::FormatAmzDate(now - kMaxClockSkew),
                                      http::FormatAmzDate(now)));
  }
  if (*signed_at - kMaxClockSkew > now) {
    return SignatureError(
        fmt::format("Signature not yet current: {} is still later than {} ({} + 5 min.)", amz_date,
                    http::FormatAmzDate(now + kMaxClockSkew), http::FormatAmzDate(now)));
  }
  bool host_signed =
      std::find(authorization->signed_headers.begin(), authorization->signed_headers.end(),
                "host") != authorization->signed_headers.end();
  if (!host_signed) return SignatureError("The host header must be signed.");

  // Step 3: recompute the signature over the headers the client says it signed.
  http::Headers signed_headers;
  for (const std::string& name : authorization->signed_headers) {
    size_t count = request.get_header_value_count(name);
    for (size_t i = 0; i < count; ++i) {
      signed_headers.Add(name, request.get_header_value(name, i));
    }
  }
  std::string_view target = request.target;
  size_t question = target.find('?');
  std::string payload_hash = http::Sha256Hex(request.body);
  http::SigV4Input input{request.method, target.substr(0, question),
                         question == std::string_view::npos ? "" : target.substr(question + 1),
                         &signed_headers, payload_hash};
  auto expected = http::ComputeSigV4(
      input,
      http::AwsCredentials{credential->access_key_id, credential->secret_access_key,
                           credential->session_token},
      http::SigV4Options{region_, std::string(kSigningName)}, amz_date);
  if (!expected) return SignatureError(expected.error().message);
  if (expected->signature.size() != authorization->signature.size() ||
      CRYPTO_memcmp(expected->signature.data(), authorization->signature.data(),
                    expected->signature.size()) != 0) {
    return SignatureError(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.");
  }
  return std::nullopt;
}

void Emulator::HandleApi(const httplib::Request& request, httplib::Response& response) {
  Time now = Now();
  if (auto error = Authenticate(request, now)) {
    ReplyError(response, *error);
    return;
  }

  std::string target = request.get_header_value("X-Amz-Target");
  if (!target.starts_with(kTargetPrefix)) {
    ReplyError(response,
               ApiError{400, "UnknownOperationException",
                        fmt::format("X-Amz-Target '{}' is not a CodeDeploy operation", target)});
    return;
  }
  std::string action = target.substr(kTargetPrefix.size());
  json input = json::object();
  if (!request.body.empty()) {
    try {
      input = json::parse(request.body);
    } catch (const json::parse_error& error) {
      ReplyError(response, ApiError{400, "SerializationException", error.what()});
      return;
    }
  }

  ApiResult result;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mutex_);
    ++call_counts_[action];
    auto failed = failed_calls_.find(action);
    if (failed != failed_calls_.end()) {
      ApiError error = failed->second.error;
      if (--failed->second.remaining == 0) failed_calls_.erase(failed);
      ReplyError(response, error);
      return;
    }
    result = model_->Call(action, input, now);
    auto delayed = delayed_responses_.find(action);
    if (delayed != delayed_responses_.end()) {
      delay = delayed->second.delay;
      if (--delayed->second.remaining == 0) delayed_responses_.erase(delayed);
    }
  }

  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  if (!result) {
    ReplyError(response, result.error());
    return;
  }
  Reply(response, 200, *result);
}

void Emulator::HandleHook(const httplib::Request& request, httplib::Response& response,
                          const std::string& name) {
  json body;
  try {
    body = request.body.empty() ? json::object() : json::parse(request.body);
  } catch (const json::parse_error& error) {
    response.status = 400;
    response.set_content(json{{"error", error.what()}}.dump(), "application/json");
    return;
  }

  std::expected<void, std::string> done;
  if (name == "fail-instance") {
    done = InjectInstanceFailure(body);
  } else if (name == "revision-behavior") {
    done = SetRevisionBehavior(body);
  } else if (name == "stall") {
    done = Stall(body);
  } else if (name == "unstall") {
    done = Unstall(body);
  } else if (name == "fail-call") {
    FailNextCalls(
        body.value("action", ""),
        ApiError{body.value("status", 400), body.value("errorType", "ThrottlingException"),
                 body.value("message", "Rate exceeded")},
        body.value("times", 1));
  } else if (name == "delay-response") {
    DelayNextResponses(body.value("action", ""),
                       std::chrono::milliseconds(body.value("delayMs", 1000)),
                       body.value("times", 1));
  }
  if (!done) {
    response.status = 400;
    response.set_content(json{{"error", done.error()}}.dump(), "application/json");
    return;
  }
  response.set_content(R"({"ok":true})", "application/json");
}

std::expected<void, std::string> Emulator::InjectInstanceFailure(const json& request) {
  std::lock_guard lock(mutex_);
  return model_->InjectInstanceFailure(request);
}

std::expected<void, std::string> Emulator::SetRevisionBehavior(const json& request) {
  std::lock_guard lock(mutex_);
  return model_->SetRevisionBehavior(request);
}

std::expected<void, std::string> Emulator::Stall(const json& request) {
  std::lock_guard lock(mutex_);
  return model_->SetStalled(request, true, Now());
}

std::expected<void, std::string> Emulator::Unstall(const json& request) {
  std::lock_guard lock(mutex_);
  return model_->SetStalled(request, false, Now());
}

void Emulator::FailNextCalls(const std::string& action, ApiError error, int times) {
  std::lock_guard lock(mutex_);
  failed_calls_[action] = FailedCall{std::move(error), std::max(1, times)};
}

void Emulator::DelayNextResponses(const std::string& action, std::chrono::milliseconds delay,
                                  int times) {
  std::lock_guard lock(mutex_);
  delayed_responses_[action] = DelayedResponse{delay, std::max(1, times)};
}

json Emulator::Dump() {
  std::lock_guard lock(mutex_);
  return model_->Dump(Now());
}

int Emulator::CallCount(const std::string& action) {
  std::lock_guard lock(mutex_);
  auto it = call_counts_.find(action);
  return it == call_counts_.end() ? 0 : it->second;
}

}  // namespace backout::emulators::codedeploy
