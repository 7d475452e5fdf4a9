#include "server/openapi.h"

#include <algorithm>
#include <string>

#include "server/errors.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

json PathParameters(const Route& route) {
  json parameters = json::array();
  size_t start = 0;
  while ((start = route.path.find('{', start)) != std::string::npos) {
    const size_t end = route.path.find('}', start);
    parameters.push_back({{"name", route.path.substr(start + 1, end - start - 1)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
    start = end;
  }
  for (const QueryParameter& parameter : route.query) {
    parameters.push_back({{"name", parameter.name},
                          {"in", "query"},
                          {"required", parameter.required},
                          {"description", parameter.schema.description},
                          {"schema", ToJsonSchema(parameter.schema)}});
  }
  return parameters;
}

json Operation(const Route& route) {
  json operation = {{"operationId", route.operation_id}, {"summary", route.summary}};
  json parameters = PathParameters(route);
  if (!parameters.empty()) operation["parameters"] = std::move(parameters);
  if (route.request_body) {
    operation["requestBody"] = {
        {"required", true},
        {"content", {{"application/json", {{"schema", ToJsonSchema(*route.request_body)}}}}}};
  }

  json success_content;
  if (route.response_content_type == "application/json") {
    success_content = {{"application/json", {{"schema", ToJsonSchema(route.response)}}}};
  } else {
    success_content = {{route.response_content_type, {{"schema", {{"type", "string"}}}}}};
  }
  operation["responses"] = {
      {std::to_string(route.success_status),
       {{"description",
         route.response.description.empty() ? "Success." : route.response.description},
        {"content", success_content}}},
      {"default",
       {{"description", "An error; the status code and `error.code` say which."},
        {"content",
         {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}}}};

  if (route.access == Access::kAuthenticated) {
    operation["security"] = json::array({{{"bearerAuth", json::array()}}});
  } else if (route.access == Access::kMetrics) {
    operation["security"] = json::array({json::object(), {{"bearerAuth", json::array()}}});
  } else {
    operation["security"] = json::array();
  }
  return operation;
}

}  // namespace

json BuildOpenApi(const Router& router, std::string_view version) {
  json paths = json::object();
  for (const Route& route : router.routes()) {
    paths[route.path][Lower(route.method)] = Operation(route);
  }
  return {
      {"openapi", "3.0.3"},
      {"info",
       {{"title", "Backout API"},
        {"version", version},
        {"description",
         "Rollback and recovery control plane. Every state change is recorded in a "
         "tamper-evident ledger."}}},
      {"paths", std::move(paths)},
      {"components",
       {{"schemas", {{"Error", ToJsonSchema(ErrorSchema())}}},
        {"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
  };
}

}  // namespace backout::server
