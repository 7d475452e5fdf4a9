#include "server/errors.h"

#include <string>
#include <vector>

namespace backout::server {

int HttpStatusFor(core::ErrorCode code) {
  switch (code) {
    case core::ErrorCode::kInvalidArgument:
      return 400;
    case core::ErrorCode::kNotFound:
      return 404;
    case core::ErrorCode::kAlreadyExists:
    case core::ErrorCode::kFailedPrecondition:
    case core::ErrorCode::kConflict:
      return 409;
    case core::ErrorCode::kPermissionDenied:
      return 403;
    case core::ErrorCode::kUnauthenticated:
      return 401;
    case core::ErrorCode::kUnavailable:
      return 503;
    case core::ErrorCode::kTimeout:
      return 504;
    case core::ErrorCode::kCorruption:
    case core::ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

nlohmann::json ErrorBody(std::string_view code, std::string_view message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

nlohmann::json ErrorBody(const core::Error& error) {
  return ErrorBody(core::ErrorCodeName(error.code), error.message);
}

const Schema& ErrorSchema() {
  static const Schema schema = [] {
    std::vector<std::string> codes;
    for (auto code :
         {core::ErrorCode::kInvalidArgument, core::ErrorCode::kNotFound,
          core::ErrorCode::kAlreadyExists, core::ErrorCode::kFailedPrecondition,
          core::ErrorCode::kPermissionDenied, core::ErrorCode::kUnauthenticated,
          core::ErrorCode::kConflict, core::ErrorCode::kCorruption, core::ErrorCode::kUnavailable,
          core::ErrorCode::kTimeout, core::ErrorCode::kInternal}) {
      codes.emplace_back(core::ErrorCodeName(code));
    }
    codes.emplace_back(kPayloadTooLarge);
    codes.emplace_back(kMethodNotAllowed);
    codes.emplace_back(kRateLimited);
    codes.emplace_back(kUnsupportedMediaType);
    return ObjectSchema(
        "An error answer.",
        {Required("error",
                  ObjectSchema(
                      "What failed.",
                      {Required("code", EnumSchema("Machine-readable kind of failure.", codes)),
                       Required("message", StringSchema("What failed, on which value, and what to "
                                                        "do next."))}))});
  }();
  return schema;
}

}  // namespace backout::server
