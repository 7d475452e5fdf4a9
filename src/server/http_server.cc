#include "server/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "server/connections.h"
#include "server/errors.h"
#include "server/worker_pool.h"

namespace backout::server {
namespace {

constexpr char kJson[] = "application/json";

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return HttpResponse{.status = status, .body = ErrorBody(code, message)};
}

HttpResponse ErrorResponse(const core::Error& error) {
  return HttpResponse{.status = HttpStatusFor(error.code), .body = ErrorBody(error)};
}

// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

std::optional<std::string> BearerToken(const httplib::Request& request) {
  const std::string header = request.get_header_value("Authorization");
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size()) return std::nullopt;
  std::string scheme = header.substr(0, kScheme.size());
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return std::nullopt;
  return header.substr(kScheme.size());
}

// Returns the request's headers with lower-case names, the form HttpRequest::headers uses.
std::map<std::string, std::string> LowerCaseHeaders(const httplib::Request& request) {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string lower = name;
    std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
    headers.emplace(std::move(lower), value);
  }
  return headers;
}

// Whether a Content-Type header starts with application/json, ignoring case because media type
// names are case-insensitive (RFC 9110 section 8.3.1).
bool IsJsonMediaType(std::string_view content_type) {
  constexpr std::string_view kJsonType = "application/json";
  if (content_type.size() < kJsonType.size()) return false;
  for (size_t i = 0; i < kJsonType.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(content_type[i])) != kJsonType[i]) return false;
  }
  return true;
}

std::string_view ReasonFor(int status) {
  switch (status) {
    case 400:
      return "the request is malformed";
    case 404:
      return "no such route";
    case 405:
      return "method not allowed";
    case 413:
      return "the request body is too large";
    case 414:
      return "the request URI is too long";
    default:
      return "the request failed";
  }
}

// Returns true when `text` is valid UTF-8. It uses nlohmann::json's serializer, which every JSON
// response of the server passes through.
bool IsUtf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

// Returns the name, as sent, of a `name=value` pair that appears twice in the query string of
// `target`, or std::nullopt when none does.
std::optional<std::string> RepeatedQueryPair(std::string_view target) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::set<std::string_view> seen;
  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    if (!seen.insert(pair).second) return std::string(pair.substr(0, pair.find('=')));
  }
  return std::nullopt;
}

std::string_view CodeForStatus(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
      return kMethodNotAllowed;
    case 413:
      return kPayloadTooLarge;
    case 429:
      return kRateLimited;
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "invalid_argument";
  }
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, const Router& router, Authenticator authenticator,
                       const core::Clock& clock, Metrics& metrics)
    : options_(std::move(options)),
      router_(router),
      authenticator_(std::move(authenticator)),
      metrics_(metrics),
      rate_limiter_(clock, options_.rate_limit),
      webhook_rate_limiter_(clock, options_.rate_limit) {}

HttpServer::~HttpServer() = default;

core::Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                             const Router& router,
                                                             Authenticator authenticator,
                                                             const core::Clock& clock,
                                                             Metrics& metrics) {
  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(options), router, std::move(authenticator), clock, metrics));
  try {
    server->guard_ =
        std::make_unique<ConnectionGuard>(server->options_.connections, clock, metrics);
  } catch (const std::system_error& error) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "could not set up the HTTP server's connection limits: {}",
                           error.what());
  }

  if (server->options_.tls) {
    const TlsFiles& tls = *server->options_.tls;
    auto ssl = std::make_unique<GuardedTlsServer>(tls.certificate_file, tls.private_key_file,
                                                  *server->guard_);
    if (!ssl->is_valid()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "could not load the TLS certificate {} and key {}; check that both "
                             "are readable PEM files and that the key matches the certificate",
                             tls.certificate_file, tls.private_key_file);
    }
    server->server_ = std::move(ssl);
  } else {
    server->server_ = std::make_unique<GuardedServer>(*server->guard_);
  }

  httplib::Server& http = *server->server_;
  http.set_tcp_nodelay(true);
  // httplib refuses larger bodies before reading them, so its limit is the largest of any route.
  size_t largest_body = server->options_.max_body_bytes;
  for (const Route& route : router.routes()) {
    largest_body = std::max(largest_body, route.max_body_bytes.value_or(0));
  }
  http.set_payload_max_length(largest_body);
  // Each open connection occupies a worker thread, also while it waits for a request. Up to 64
  // threads, the request deadline and the idle timeout (ConnectionLimits) bound how long slow or
  // idle clients hold them. The threads start as connections arrive, because 64 idle threads
  // kept about 0.5 MiB of stack resident (/proc/PID/smaps of an idle server).
  http.new_task_queue = [] {
    return new OnDemandThreadPool(
        {.min_threads = 2, .max_threads = 64, .idle_timeout = std::chrono::seconds(30)});
  };
  // GuardedServer reads with its own deadlines. httplib applies the write timeout to each
  // accepted socket (SO_SNDTIMEO), which bounds a blocking send.
  http.set_write_timeout(server->options_.connections.write_timeout);

  // cpp-httplib 0.11 reads the body of a POST, PUT, PATCH or DELETE without Content-Length or
  // Transfer-Encoding until the connection closes, so `curl -X POST URL` waited for the read
  // timeout and got 400. RFC 9112 section 6.3 gives such a request an empty body, which the added
  // header states before httplib reads it. The request object is not const, only the parameter.
  //
  // A path or query value that is not UTF-8 once percent-decoded cannot go into a JSON response or
  // a log line, so it gets a 400 naming the part before any route sees it.
  http.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!request.has_header("Content-Length") && !request.has_header("Transfer-Encoding")) {
      const_cast<httplib::Request&>(request).headers.emplace("Content-Length", "0");
    }
    std::string invalid;
    if (!IsUtf8(request.path)) {
      invalid = "the request path";
    } else {
      for (const auto& [name, value] : request.params) {
        if (!IsUtf8(name)) {
          invalid = "a query parameter name";
          break;
        }
        if (!IsUtf8(value)) {
          invalid = fmt::format("query parameter {}", name);
          break;
        }
      }
    }
    if (invalid.empty()) return httplib::Server::HandlerResponse::Unhandled;
    response.status = 400;
    response.set_content(
        ErrorBody("invalid_argument",
                  fmt::format("{} is not UTF-8 text once percent-decoded; send UTF-8 text, "
                              "percent-encoded",
                              invalid))
            .dump(),
        kJson);
    return httplib::Server::HandlerResponse::Handled;
  });

  HttpServer* self = server.get();
  auto dispatch = [self](const httplib::Request& request, httplib::Response& response) {
    self->Dispatch(request, response);
  };
  const std::string any_path = "/.*";
  http.Get(any_path, dispatch);
  http.Post(any_path, dispatch);
  http.Put(any_path, dispatch);
  http.Patch(any_path, dispatch);
  http.Delete(any_path, dispatch);
  http.Options(any_path, dispatch);

  // httplib responds to some requests itself (oversized bodies, unparsable request lines), so
  // give those responses the same error body as every other error.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [self](const httplib::Request& request, httplib::Response& response) {
        // The connection loop sends the 408 for a request cut off at its deadline.
        if (RequestTimedOut()) return httplib::Server::HandlerResponse::Unhandled;
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message(ReasonFor(response.status));
        if (response.status == 413) {
          const Router::Match match = self->router_.Find(request.method, request.path);
          const size_t limit =
              match.route != nullptr
                  ? match.route->max_body_bytes.value_or(self->options_.max_body_bytes)
                  : self->options_.max_body_bytes;
          message = fmt::format("the request body is larger than the limit of {} bytes; send less",
                                limit);
          self->CountTooLarge(request, match.route != nullptr ? match.route->path : "(unrouted)",
                              limit);
        }
        response.set_content(ErrorBody(CodeForStatus(response.status), message).dump(), kJson);
        self->metrics_.Increment(kRequestsTotal, {{"method", request.method},
                                                  {"route", "(unrouted)"},
                                                  {"status", std::to_string(response.status)}});
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& exception) {
          what = exception.what();
        } catch (...) {
        }
        spdlog::error("component=http method={} path={} error=\"uncaught exception: {}\"",
                      request.method, request.path, what);
        response.status = 500;
        response.set_content(
            ErrorBody("internal", "the server failed to process the request; see the server log")
                .dump(),
            kJson);
      });
  return server;
}

core::Result<int> HttpServer::Bind() {
  // cpp-httplib 0.11's default options set SO_REUSEPORT, with which a second server binds the
  // same port and the kernel splits connections between the two. SO_REUSEADDR alone still lets
  // a restart bind while old connections linger in TIME_WAIT, but not while another socket
  // listens on the port.
  server_->set_socket_options([](socket_t socket) {
    int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
    if (port < 0) port = -1;
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port < 0) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "could not listen on {}:{}; check that the address is local and that "
                           "no other process uses the port",
                           options_.host, options_.port);
  }
  const bool widened = tls() ? static_cast<GuardedTlsServer&>(*server_).WidenBacklog()
                             : static_cast<GuardedServer&>(*server_).WidenBacklog();
  if (!widened) {
    spdlog::warn("component=http event=listen_backlog_failed backlog=5 error=\"{}\"",
                 std::strerror(errno));
  }
  spdlog::info("component=http event=listening address={}:{} tls={}", options_.host, port, tls());
  return port;
}

void HttpServer::Serve() { server_->listen_after_bind(); }

void HttpServer::Stop() {
  server_->stop();
  guard_->Stop();
}

void HttpServer::Dispatch(const httplib::Request& request, httplib::Response& response) {
  std::string route_label = "(unrouted)";
  std::optional<app::Caller> caller;
  HttpResponse answer;
  try {
    answer = Answer(request, route_label, caller);
  } catch (const std::exception& exception) {
    spdlog::error("component=http method={} path={} error=\"uncaught exception: {}\"",
                  request.method, request.path, exception.what());
    answer = ErrorResponse(500, "internal",
                           "the server failed to process the request; see the server log");
  }

  response.status = answer.status;
  for (const auto& [name, value] : answer.headers) response.set_header(name, value);
  if (answer.content_type == kJson) {
    response.set_content(answer.body.dump(), kJson);
  } else {
    response.set_content(answer.text, answer.content_type.c_str());
  }
  metrics_.Increment(kRequestsTotal, {{"method", request.method},
                                      {"route", route_label},
                                      {"status", std::to_string(answer.status)}});
  if (answer.status == 403) metrics_.Increment(kRefusedTotal);

  const std::string caller_name = caller ? caller->name() : "-";
  if (answer.status >= 500) {
    spdlog::error("component=http method={} path={} status={} caller={} error=\"{}\"",
                  request.method, request.path, answer.status, caller_name,
                  answer.body.value("/error/message"_json_pointer, std::string()));
  } else {
    spdlog::info("component=http method={} path={} status={} caller={}", request.method,
                 request.path, answer.status, caller_name);
  }
}

HttpResponse HttpServer::Answer(const httplib::Request& request, std::string& route_label,
                                std::optional<app::Caller>& caller) {
  const Router::Match match = router_.Find(request.method, request.path);
  if (match.status == Router::MatchStatus::kNoPath) {
    return ErrorResponse(404, "not_found",
                         fmt::format("no route {} {}; /api/v1/openapi.json lists the routes",
                                     request.method, request.path));
  }
  if (match.status == Router::MatchStatus::kWrongMethod) {
    HttpResponse answer =
        ErrorResponse(405, kMethodNotAllowed,
                      fmt::format("{} does not accept {}; use {}", request.path, request.method,
                                  fmt::join(match.allowed_methods, " or ")));
    answer.headers.emplace_back("Allow", fmt::format("{}", fmt::join(match.allowed_methods, ", ")));
    return answer;
  }

  const Route& route = *match.route;
  route_label = route.path;
  if (auto refused = CheckAccess(route, request, caller)) return *refused;
  HttpRequest sender;
  if (route.authenticate_sender) {
    sender.remote_address = request.remote_addr;
    sender.headers = LowerCaseHeaders(request);
    sender.raw_body = request.body;
    if (auto refused = AuthenticateSender(route, sender)) return *refused;
  }

  // httplib moves the fields of a form-encoded body into the query parameters, so a body is
  // accepted only as JSON; this also keeps form posts from other origins out.
  const std::string content_type = request.get_header_value("Content-Type");
  if (!request.body.empty() && !IsJsonMediaType(content_type)) {
    return ErrorResponse(415, kUnsupportedMediaType,
                         fmt::format("the request body must be JSON; send the header "
                                     "`Content-Type: application/json` (got \"{}\")",
                                     content_type));
  }

  // httplib drops a repeat of the same `name=value` text before request.params is filled, so an
  // exact repeat is found in the raw query string, and a repeat with another value below.
  if (auto repeated = RepeatedQueryPair(request.target)) {
    return ErrorResponse(400, "invalid_argument",
                         fmt::format("query parameter `{}` is given more than once", *repeated));
  }
  std::map<std::string, std::string> query;
  for (const auto& [name, value] : request.params) {
    if (!query.emplace(name, value).second) {
      return ErrorResponse(400, "invalid_argument",
                           fmt::format("query parameter `{}` is given more than once", name));
    }
  }
  if (auto checked = ValidateQuery(route, query); !checked) return ErrorResponse(checked.error());

  const size_t body_limit = route.max_body_bytes.value_or(options_.max_body_bytes);
  if (request.body.size() > body_limit) {
    CountTooLarge(request, route.path, body_limit);
    return ErrorResponse(413, kPayloadTooLarge,
                         fmt::format("the request body is larger than the limit of {} bytes; "
                                     "send less",
                                     body_limit));
  }
  nlohmann::json body;
  std::string raw_body;
  std::map<std::string, std::string> headers;
  if (route.raw_body && route.authenticate_sender) {
    raw_body = std::move(sender.raw_body);
    headers = std::move(sender.headers);
  } else if (route.raw_body) {
    raw_body = request.body;
    headers = LowerCaseHeaders(request);
  } else if (route.request_body) {
    if (request.body.empty()) {
      body = nlohmann::json::object();
    } else {
      try {
        body = nlohmann::json::parse(request.body);
      } catch (const nlohmann::json::parse_error& error) {
        return ErrorResponse(400, "invalid_argument",
                             fmt::format("the request body is not valid JSON (byte {}): send one "
                                         "JSON object",
                                         error.byte));
      }
    }
    if (auto checked = Validate(body, *route.request_body); !checked) {
      return ErrorResponse(checked.error());
    }
  } else if (!request.body.empty()) {
    return ErrorResponse(
        400, "invalid_argument",
        fmt::format("{} {} takes no request body; send none", route.method, route.path));
  }

  HttpRequest call{.method = request.method,
                   .path = request.path,
                   .path_parameters = match.path_parameters,
                   .query = std::move(query),
                   .body = std::move(body),
                   .caller = caller,
                   .remote_address = request.remote_addr,
                   .raw_body = std::move(raw_body),
                   .headers = std::move(headers)};
  core::Result<HttpResponse> answer = route.handler(call);
  if (!answer) return ErrorResponse(answer.error());
  return *std::move(answer);
}

std::optional<HttpResponse> HttpServer::AuthenticateSender(const Route& route,
                                                           const HttpRequest& sender) {
  core::Result<void> authenticated = route.authenticate_sender(sender);
  if (authenticated) return std::nullopt;
  // A webhook sender is limited only when its credentials fail, so a request with valid
  // credentials always goes on, and a blocked sender gets 429 instead of 401.
  // NOTE: a blocked sender still gets through with a right guess, so a client that ignores 429
  // can keep guessing. Only the length of the webhook credential stops that.
  // Credentials that could not be checked (kUnavailable: the secret cannot be read) count as
  // failed too, so a guesser is limited the same way while the secret is missing.
  if (authenticated.error().code == core::ErrorCode::kUnauthenticated ||
      authenticated.error().code == core::ErrorCode::kUnavailable) {
    if (auto limited = RateLimited(webhook_rate_limiter_, sender.remote_address)) return limited;
    webhook_rate_limiter_.RecordFailure(sender.remote_address);
  }
  return ErrorResponse(authenticated.error());
}

std::optional<HttpResponse> HttpServer::CheckAccess(const Route& route,
                                                    const httplib::Request& request,
                                                    std::optional<app::Caller>& caller) {
  if (route.access == Access::kPublic) return std::nullopt;
  if (route.access == Access::kMetrics && options_.metrics_token.empty()) return std::nullopt;

  const std::string& address = request.remote_addr;
  if (auto limited = RateLimited(rate_limiter_, address)) return limited;

  const std::optional<std::string> token = BearerToken(request);
  if (!token) {
    return Unauthenticated(address,
                           "missing bearer token; send the header `Authorization: Bearer TOKEN`");
  }
  if (route.access == Access::kMetrics) {
    if (!ConstantTimeEquals(*token, options_.metrics_token)) {
      return Unauthenticated(address, "the metrics token is not valid");
    }
    return std::nullopt;
  }

  core::Result<app::Caller> resolved = authenticator_(*token);
  if (!resolved) {
    if (resolved.error().code == core::ErrorCode::kUnauthenticated) {
      return Unauthenticated(address, resolved.error().message);
    }
    return ErrorResponse(resolved.error());
  }
  caller = *std::move(resolved);
  return std::nullopt;
}

void HttpServer::CountTooLarge(const httplib::Request& request, const std::string& route,
                               size_t limit) {
  metrics_.Increment(kPayloadTooLargeTotal, {{"route", route}});
  // A chunked body has no Content-Length, so the line records its transfer encoding instead.
  const std::string length = request.get_header_value("Content-Length");
  spdlog::warn("component=http event=payload_too_large method={} route={} remote={} {} limit={}",
               request.method, route, request.remote_addr,
               length.empty() ? "transfer_encoding=chunked" : "content_length=" + length, limit);
}

std::optional<HttpResponse> HttpServer::RateLimited(RateLimiter& limiter,
                                                    const std::string& address) {
  const core::Duration blocked = limiter.BlockedFor(address);
  if (blocked <= core::Duration::zero()) return std::nullopt;
  metrics_.Increment(kRateLimitedTotal);
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(blocked).count();
  HttpResponse answer = ErrorResponse(
      429, kRateLimited,
      fmt::format("too many unauthenticated attempts from {}; retry in {} s", address, seconds));
  answer.headers.emplace_back("Retry-After", std::to_string(seconds));
  return answer;
}

HttpResponse HttpServer::Unauthenticated(const std::string& address, std::string_view message) {
  rate_limiter_.RecordFailure(address);
  metrics_.Increment(kUnauthenticatedTotal);
  HttpResponse answer = ErrorResponse(401, "unauthenticated", message);
  answer.headers.emplace_back("WWW-Authenticate", "Bearer");
  return answer;
}

}  // namespace backout::server
