#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "server/router.h"

namespace backout::server {

// Builds the OpenAPI 3.0 document from the route table the server dispatches with.
nlohmann::json BuildOpenApi(const Router& router, std::string_view version);

}  // namespace backout::server
