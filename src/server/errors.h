#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "server/schema.h"

namespace backout::server {

// Codes used only by the HTTP layer, beside those of core::ErrorCodeName.
inline constexpr char kPayloadTooLarge[] = "payload_too_large";
inline constexpr char kMethodNotAllowed[] = "method_not_allowed";
inline constexpr char kRateLimited[] = "rate_limited";
inline constexpr char kUnsupportedMediaType[] = "unsupported_media_type";

int HttpStatusFor(core::ErrorCode code);

// {"error": {"code": code, "message": message}}
nlohmann::json ErrorBody(std::string_view code, std::string_view message);
nlohmann::json ErrorBody(const core::Error& error);

// The schema every error body follows; the OpenAPI document and the tests use it.
const Schema& ErrorSchema();

}  // namespace backout::server
