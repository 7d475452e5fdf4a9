#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/caller.h"
#include "core/error.h"
#include "server/schema.h"

namespace backout::server {

// Who may call a route. Authorization by role happens in the use cases, which ledger refusals;
// the router only decides whether a bearer token is required.
enum class Access {
  kPublic,         // no token
  kAuthenticated,  // a valid bearer token
  kMetrics,        // public, or the metrics token when one is configured
};

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> path_parameters;
  std::map<std::string, std::string> query;
  nlohmann::json body;  // validated against the route's request schema; null without one
  std::optional<app::Caller> caller;
  std::string remote_address;
  // For routes with raw_body: the body's bytes as received, not parsed, and the request headers
  // with lower-case names.
  std::string raw_body;
  std::map<std::string, std::string> headers;
};

struct HttpResponse {
  int status = 200;
  nlohmann::json body;
  std::string text;  // sent instead of `body` when `content_type` is not JSON
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

using Handler = std::function<core::Result<HttpResponse>(const HttpRequest&)>;

// Checks a webhook sender's own credentials. It receives the request's remote address, its
// headers with lower-case names and its raw body. The other members are empty.
using SenderAuthenticator = std::function<core::Result<void>(const HttpRequest&)>;

struct QueryParameter {
  std::string name;
  Schema schema;  // string or integer
  // A request without the parameter is rejected with 400 before the handler runs.
  bool required = false;
};

// One entry of the route table. The OpenAPI document is generated from the same entries.
struct Route {
  std::string method;  // GET, POST, PUT, DELETE
  std::string path;    // segments, `{name}` for a path parameter: /api/v1/incidents/{id}
  std::string operation_id;
  std::string summary;
  Access access = Access::kAuthenticated;
  std::optional<Schema> request_body;
  std::vector<QueryParameter> query;
  int success_status = 200;
  Schema response = OpenObjectSchema("");
  std::string response_content_type = "application/json";
  Handler handler;
  // The handler reads HttpRequest::raw_body itself (a webhook that verifies a signature over the
  // exact bytes); request_body then only documents the shape.
  bool raw_body = false;
  // A body limit for this route instead of the server's.
  std::optional<size_t> max_body_bytes;
  // For a webhook on a kPublic route: checks the sender's own credentials before anything else
  // about the request (media type, query, size, body), so that a sender without them learns
  // nothing about the route. A kUnauthenticated error counts against the client address in the
  // server's webhook rate limiter, and turns into 429 while that address is blocked. Valid
  // credentials always go on to the other checks and the handler.
  SenderAuthenticator authenticate_sender;
};

// Matches request paths against the route table.
class Router {
 public:
  enum class MatchStatus { kFound, kNoPath, kWrongMethod };

  struct Match {
    MatchStatus status = MatchStatus::kNoPath;
    const Route* route = nullptr;
    std::map<std::string, std::string> path_parameters;
    std::vector<std::string> allowed_methods;  // for kWrongMethod
  };

  void Add(Route route);
  Match Find(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// Checks the query string against the route's declared parameters: unknown names, missing
// required parameters, empty values (except the page cursor `after`), integers that do not parse
// and values outside an enum are rejected with kInvalidArgument naming the parameter.
core::Result<void> ValidateQuery(const Route& route,
                                 const std::map<std::string, std::string>& query);

}  // namespace backout::server
