#include "cli/api_client.h"

#include <array>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "http/client.h"

namespace backout::cli {
namespace {

constexpr std::array<core::ErrorCode, 11> kAllErrorCodes = {
    core::ErrorCode::kInvalidArgument,  core::ErrorCode::kNotFound,
    core::ErrorCode::kAlreadyExists,    core::ErrorCode::kFailedPrecondition,
    core::ErrorCode::kPermissionDenied, core::ErrorCode::kUnauthenticated,
    core::ErrorCode::kConflict,         core::ErrorCode::kCorruption,
    core::ErrorCode::kUnavailable,      core::ErrorCode::kTimeout,
    core::ErrorCode::kInternal,
};

// The error kind for a status when the body names no known code.
core::ErrorCode CodeForStatus(int status) {
  switch (status) {
    case 400:
    case 405:
    case 413:
    case 422:
      return core::ErrorCode::kInvalidArgument;
    case 401:
      return core::ErrorCode::kUnauthenticated;
    case 403:
      return core::ErrorCode::kPermissionDenied;
    case 404:
      return core::ErrorCode::kNotFound;
    case 409:
      return core::ErrorCode::kFailedPrecondition;
    case 429:
    case 502:
    case 503:
      return core::ErrorCode::kUnavailable;
    case 504:
      return core::ErrorCode::kTimeout;
    default:
      return core::ErrorCode::kInternal;
  }
}

core::ErrorCode CodeForName(std::string_view name, int status) {
  for (core::ErrorCode code : kAllErrorCodes) {
    if (core::ErrorCodeName(code) == name) {
      return code;
    }
  }
  return CodeForStatus(status);
}

// Returns the next step to append to an error the server returned, for the statuses whose own
// message may leave it out.
std::string_view HintForStatus(int status) {
  switch (status) {
    case 401:
      return "; pass a valid token with --token or BACKOUT_TOKEN";
    default:
      return "";
  }
}

core::ErrorCode CodeForTransport(http::ErrorKind kind) {
  switch (kind) {
    case http::ErrorKind::kInvalidArgument:
      return core::ErrorCode::kInvalidArgument;
    case http::ErrorKind::kUnavailable:
      return core::ErrorCode::kUnavailable;
    case http::ErrorKind::kTimeout:
      return core::ErrorCode::kTimeout;
    case http::ErrorKind::kInternal:
      return core::ErrorCode::kInternal;
  }
  return core::ErrorCode::kInternal;
}

// The HTTP client logs errors only, to stderr: a retry is not news to the person at the terminal,
// and stdout holds only the command's output.
std::shared_ptr<spdlog::logger> StderrLogger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto created = spdlog::stderr_color_mt("backout-cli");
    created->set_level(spdlog::level::err);
    return created;
  }();
  return logger;
}

// Returns the JSON path ("/markdown", "/factors/2") of the first string in `value`, key or
// element, that is not UTF-8, with the offset of its first invalid byte.
std::optional<std::pair<std::string, size_t>> FindInvalidString(const Json& value,
                                                                const std::string& path) {
  if (value.is_string()) {
    if (auto offset = FindInvalidUtf8(value.get_ref<const std::string&>())) {
      return std::pair{path.empty() ? std::string("/") : path, *offset};
    }
    return std::nullopt;
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (auto offset = FindInvalidUtf8(key)) return std::pair{path + "/" + key, *offset};
      if (auto found = FindInvalidString(item, path + "/" + key)) return found;
    }
  }
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      if (auto found = FindInvalidString(value[i], fmt::format("{}/{}", path, i))) return found;
    }
  }
  return std::nullopt;
}

// Serializes a request body. nlohmann::json throws type_error on a string that is not UTF-8, so
// the body is checked first and the error names the field.
core::Result<std::string> SerializeBody(const Json& body) {
  if (auto invalid = FindInvalidString(body, "")) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "request field {} is not UTF-8 text (invalid byte at offset {}); "
                           "pass UTF-8 text for it",
                           invalid->first, invalid->second);
  }
  try {
    return body.dump();
  } catch (const Json::exception& error) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the request body cannot be serialized as JSON: {}", error.what());
  }
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong
      if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong
      if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return i;
    for (size_t k = 2; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::string EncodeUrlComponent(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string WithQuery(std::string_view path,
                      const std::vector<std::pair<std::string, std::string>>& query) {
  std::string out(path);
  char separator = path.find('?') == std::string_view::npos ? '?' : '&';
  for (const auto& [key, value] : query) {
    if (value.empty()) {
      continue;
    }
    out += fmt::format("{}{}={}", separator, EncodeUrlComponent(key), EncodeUrlComponent(value));
    separator = '&';
  }
  return out;
}

core::Error ErrorFromResponse(int status, std::string_view body) {
  const Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const Json& error = parsed["error"];
    const std::string code = StringField(error, "code");
    const std::string message = StringField(error, "message");
    if (!message.empty()) {
      return core::Error{CodeForName(code, status),
                         fmt::format("{} (HTTP {}{}){}", message, status,
                                     code.empty() ? "" : " " + code, HintForStatus(status))};
    }
  }

  // Not Backout's error shape: a proxy or another server responded, so show what came back.
  std::string excerpt(body.substr(0, 200));
  if (excerpt.empty()) {
    excerpt = "empty body";
  }
  return core::Error{CodeForStatus(status),
                     fmt::format("the server answered HTTP {} ({}){}: check that the URL points "
                                 "at a Backout server",
                                 status, excerpt, HintForStatus(status))};
}

core::Error UnreachableError(std::string_view url, std::string_view cause) {
  return core::Error{core::ErrorCode::kUnavailable,
                     fmt::format("cannot reach Backout at {}: {}; start it with `backout serve "
                                 "--config FILE` or set BACKOUT_URL",
                                 url, cause)};
}

core::Result<ApiClient> ApiClient::Create(ConnectionOptions options) {
  while (options.url.ends_with('/')) {
    options.url.pop_back();
  }
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid server URL '{}': write it as http://HOST:PORT or "
                           "https://HOST:PORT, e.g. {}",
                           options.url, kDefaultUrl);
  }

  http::ClientOptions client_options;
  client_options.name = "cli";
  client_options.logger = StderrLogger();
  client_options.redaction.secret_values = {options.token};
  client_options.redaction.json_fields = {"token"};
  auto client = http::Client::Create(std::move(client_options));
  if (!client) {
    return core::MakeError(CodeForTransport(client.error().kind), "{}", client.error().message);
  }
  return ApiClient(std::move(options), std::move(*client));
}

ApiClient::ApiClient(ConnectionOptions options, std::unique_ptr<http::Client> client)
    : options_(std::move(options)), client_(std::move(client)) {}

ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

core::Result<Json> ApiClient::Get(std::string_view path) {
  return Send(http::Method::kGet, path, nullptr);
}

core::Result<Json> ApiClient::Post(std::string_view path, const Json& body) {
  return Send(http::Method::kPost, path, &body);
}

core::Result<Json> ApiClient::Put(std::string_view path, const Json& body) {
  return Send(http::Method::kPut, path, &body);
}

core::Result<Json> ApiClient::Delete(std::string_view path) {
  return Send(http::Method::kDelete, path, nullptr);
}

core::Result<Json> ApiClient::GetAll(std::string_view path, size_t limit) {
  Json items = Json::array();
  std::string after;
  while (true) {
    auto page = Get(WithQuery(path, {{"after", after}}));
    if (!page) {
      return std::unexpected(page.error());
    }
    if (!page->is_object() || !page->contains("items") || !(*page)["items"].is_array()) {
      return core::MakeError(core::ErrorCode::kInternal,
                             "GET {} returned no `items` list: is {} a Backout server of this "
                             "version?",
                             path, options_.url);
    }
    for (Json& item : (*page)["items"]) {
      if (limit != 0 && items.size() >= limit) {
        return items;
      }
      items.push_back(std::move(item));
    }

    // A page that repeats its cursor would loop forever, so an unchanged cursor also ends it.
    const std::string next = StringField(*page, "next_after");
    if (next.empty() || next == after) {
      return items;
    }
    after = next;
  }
}

core::Result<std::string> ApiClient::GetBytes(std::string_view path) {
  http::Request request;
  request.method = http::Method::kGet;
  request.url = options_.url + std::string(path);
  if (!options_.token.empty()) {
    request.headers.Set("Authorization", "Bearer " + options_.token);
  }
  auto response = client_->Send(request);
  if (!response) {
    if (response.error().kind == http::ErrorKind::kUnavailable) {
      return std::unexpected(UnreachableError(options_.url, response.error().message));
    }
    return core::MakeError(CodeForTransport(response.error().kind), "{}", response.error().message);
  }
  if (response->status < 200 || response->status > 299) {
    return std::unexpected(ErrorFromResponse(response->status, response->body));
  }
  return std::move(response->body);
}

core::Result<Json> ApiClient::Send(http::Method method, std::string_view path, const Json* body) {
  http::Request request;
  request.method = method;
  request.url = options_.url + std::string(path);
  request.headers.Set("Accept", "application/json");
  if (!options_.token.empty()) {
    request.headers.Set("Authorization", "Bearer " + options_.token);
  }
  if (body != nullptr) {
    auto serialized = SerializeBody(*body);
    if (!serialized) return std::unexpected(serialized.error());
    request.headers.Set("Content-Type", "application/json");
    request.body = *std::move(serialized);
  }

  auto response = client_->Send(request);
  if (!response) {
    if (response.error().kind == http::ErrorKind::kUnavailable) {
      return std::unexpected(UnreachableError(options_.url, response.error().message));
    }
    return core::MakeError(CodeForTransport(response.error().kind), "{}", response.error().message);
  }
  if (response->status < 200 || response->status > 299) {
    return std::unexpected(ErrorFromResponse(response->status, response->body));
  }
  if (response->body.empty()) {
    return Json();
  }
  Json parsed = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return core::MakeError(core::ErrorCode::kInternal,
                           "{} {} returned HTTP {} with a body that is not JSON: check that {} is "
                           "a Backout server",
                           http::MethodName(method), path, response->status, options_.url);
  }
  return parsed;
}

}  // namespace backout::cli
