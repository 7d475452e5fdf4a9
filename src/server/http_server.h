#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/caller.h"
#include "core/clock.h"
#include "core/error.h"
#include "server/connection_limits.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "server/router.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace backout::server {

class ConnectionGuard;

struct TlsFiles {
  std::string certificate_file;  // PEM certificate chain
  std::string private_key_file;  // PEM private key
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8470;                          // 0 picks a free port
  size_t max_body_bytes = size_t{1} << 20;  // larger bodies get 413
  std::optional<TlsFiles> tls;
  std::string metrics_token;  // empty: /metrics is public
  RateLimiter::Options rate_limit;
  ConnectionLimits connections;
};

// Resolves a bearer token to its user. Returns kUnauthenticated for unknown, revoked or expired
// tokens. Called from many request threads at once.
using Authenticator = std::function<core::Result<app::Caller>(std::string_view token)>;

// The HTTP front of the control plane: matches requests against the route table, authenticates
// bearer tokens, rate-limits unauthenticated attempts per client address, validates query strings
// and JSON bodies against each route's schema, maps errors to status codes and counts everything
// in `metrics`. The router, authenticator, clock and metrics must outlive the server.
class HttpServer {
 public:
  static core::Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options,
                                                          const Router& router,
                                                          Authenticator authenticator,
                                                          const core::Clock& clock,
                                                          Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens the listening socket and returns its port.
  core::Result<int> Bind();

  // Accepts connections until Stop(); blocks the calling thread. Requests in flight when Stop()
  // is called finish before Serve() returns.
  void Serve();

  // Stops accepting connections and closes those that wait for a request. Safe to call from any
  // thread, also before Serve().
  void Stop();

  bool tls() const { return options_.tls.has_value(); }

 private:
  HttpServer(HttpServerOptions options, const Router& router, Authenticator authenticator,
             const core::Clock& clock, Metrics& metrics);

  void Dispatch(const httplib::Request& request, httplib::Response& response);
  HttpResponse Answer(const httplib::Request& request, std::string& route_label,
                      std::optional<app::Caller>& caller);
  std::optional<HttpResponse> CheckAccess(const Route& route, const httplib::Request& request,
                                          std::optional<app::Caller>& caller);
  // Runs the route's SenderAuthenticator on `sender` and returns the refusal (401, or 429 while
  // the address is blocked), or std::nullopt when the credentials are valid.
  std::optional<HttpResponse> AuthenticateSender(const Route& route, const HttpRequest& sender);
  HttpResponse Unauthenticated(const std::string& address, std::string_view message);
  // Returns a 429 response while `address` is blocked in `limiter`, or std::nullopt.
  std::optional<HttpResponse> RateLimited(RateLimiter& limiter, const std::string& address);
  // Logs and counts a body over `limit`, which httplib or the route check refused.
  void CountTooLarge(const httplib::Request& request, const std::string& route, size_t limit);

  HttpServerOptions options_;
  const Router& router_;
  Authenticator authenticator_;
  Metrics& metrics_;
  RateLimiter rate_limiter_;
  // Counts only the rejections of routes with Route::authenticate_sender, so a sender with a
  // wrong webhook credential cannot block users' API calls from the same address.
  RateLimiter webhook_rate_limiter_;
  // Declared before server_, so it outlives the connections the server runs.
  std::unique_ptr<ConnectionGuard> guard_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace backout::server
