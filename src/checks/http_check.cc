#include "checks/http_check.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "checks/settings_json.h"

namespace backout::checks {
namespace {

using nlohmann::json;
namespace sj = settings_json;

constexpr size_t kBodyExcerptBytes = 200;

core::Result<http::Method> ParseMethod(const std::string& text, const std::string& path) {
  static const std::pair<std::string_view, http::Method> kMethods[] = {
      {"GET", http::Method::kGet},        {"HEAD", http::Method::kHead},
      {"POST", http::Method::kPost},      {"PUT", http::Method::kPut},
      {"PATCH", http::Method::kPatch},    {"DELETE", http::Method::kDelete},
      {"OPTIONS", http::Method::kOptions}};
  for (const auto& [name, method] : kMethods) {
    if (name == text) return method;
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "{}: '{}' is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                         path, text);
}

core::Result<std::vector<std::pair<std::string, std::string>>> StringMap(const json& step,
                                                                         std::string_view key,
                                                                         const std::string& path) {
  std::vector<std::pair<std::string, std::string>> entries;
  auto it = step.find(std::string(key));
  if (it == step.end() || it->is_null()) return entries;
  if (!it->is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "{}: expected a mapping, got {}",
                           sj::Join(path, key), it->type_name());
  }
  for (const auto& [name, value] : it->items()) {
    if (!value.is_string()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "{}.{}: expected a string",
                             sj::Join(path, key), name);
    }
    entries.emplace_back(name, value.get<std::string>());
  }
  return entries;
}

core::Result<HttpStep> ParseStep(const json& item, size_t index) {
  const std::string path = fmt::format("steps[{}]", index);
  auto keys = sj::OnlyKeys(item,
                           {"name", "method", "url", "headers", "secret_headers", "body",
                            "expect_status", "expect_body_contains", "expect_json", "capture"},
                           path);
  if (!keys) return std::unexpected(keys.error());

  HttpStep step;
  auto name = sj::String(item, "name", path, fmt::format("step {}", index + 1));
  if (!name) return std::unexpected(name.error());
  step.name = *name;
  auto method = sj::String(item, "method", path, "GET");
  if (!method) return std::unexpected(method.error());
  auto parsed_method = ParseMethod(*method, sj::Join(path, "method"));
  if (!parsed_method) return std::unexpected(parsed_method.error());
  step.method = *parsed_method;
  auto url = sj::String(item, "url", path, std::nullopt);
  if (!url) return std::unexpected(url.error());
  if (!url->starts_with("http://") && !url->starts_with("https://")) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{}.url: '{}' is not an http:// or https:// URL", path, *url);
  }
  step.url = *url;
  auto body = sj::String(item, "body", path, "");
  if (!body) return std::unexpected(body.error());
  step.body = *body;

  auto headers = StringMap(item, "headers", path);
  if (!headers) return std::unexpected(headers.error());
  step.headers = *headers;
  auto secret_headers = StringMap(item, "secret_headers", path);
  if (!secret_headers) return std::unexpected(secret_headers.error());
  step.secret_headers = *secret_headers;
  auto capture = StringMap(item, "capture", path);
  if (!capture) return std::unexpected(capture.error());
  step.capture = *capture;
  for (const auto& [variable, pointer] : step.capture) {
    if (!pointer.starts_with("/")) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{}.capture.{}: '{}' is not a JSON pointer such as /token", path,
                             variable, pointer);
    }
  }

  auto status = sj::Number(item, "expect_status", path);
  if (!status) return std::unexpected(status.error());
  if (*status) {
    if (**status < 100 || **status > 599 || **status != static_cast<int>(**status)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{}.expect_status: {} is not an HTTP status from 100 to 599", path,
                             **status);
    }
    step.expect_status = static_cast<int>(**status);
  }
  if (item.contains("expect_body_contains")) {
    auto contains = sj::String(item, "expect_body_contains", path, std::nullopt);
    if (!contains) return std::unexpected(contains.error());
    step.expect_body_contains = *contains;
  }
  if (auto it = item.find("expect_json"); it != item.end() && !it->is_null()) {
    if (!it->is_object()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{}.expect_json: expected a mapping of JSON pointer to value", path);
    }
    for (const auto& [pointer, value] : it->items()) {
      if (!pointer.starts_with("/")) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "{}.expect_json: '{}' is not a JSON pointer such as /status", path,
                               pointer);
      }
      step.expect_json.emplace_back(pointer, value);
    }
  }
  return step;
}

// Compares an expected value from the config with the value found. Config values are often
// strings (YAML scalars), so "true" matches true and "3" matches 3.
bool JsonValueMatches(const json& expected, const json& actual) {
  if (expected == actual) return true;
  if (expected.is_string() && !actual.is_string() && !actual.is_structured()) {
    return expected.get<std::string>() == actual.dump();
  }
  if (expected.is_number() && actual.is_number()) {
    return expected.get<double>() == actual.get<double>();
  }
  return false;
}

std::string Excerpt(const std::string& body) {
  if (body.size() <= kBodyExcerptBytes) return body;
  return body.substr(0, kBodyExcerptBytes) + "…";
}

// Looks up `pointer` in `document`; nullopt when it names nothing.
std::optional<json> Lookup(const json& document, const std::string& pointer) {
  try {
    const json::json_pointer parsed(pointer);
    if (!document.contains(parsed)) return std::nullopt;
    return document.at(parsed);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

core::Result<std::string> ExpandVariables(std::string_view text,
                                          const std::map<std::string, std::string>& variables) {
  std::string out;
  size_t position = 0;
  while (position < text.size()) {
    const size_t start = text.find("${", position);
    if (start == std::string_view::npos) {
      out.append(text.substr(position));
      break;
    }
    const size_t end = text.find('}', start + 2);
    if (end == std::string_view::npos) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "unclosed '${{' at offset {} of '{}'", start, text);
    }
    out.append(text.substr(position, start - position));
    const std::string name(text.substr(start + 2, end - start - 2));
    auto found = variables.find(name);
    if (found == variables.end()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "unknown variable ${{{}}}: capture it in an earlier step", name);
    }
    out.append(found->second);
    position = end + 1;
  }
  return out;
}

core::Result<HttpCheckSettings> HttpCheckSettings::Parse(const json& settings) {
  auto keys = sj::OnlyKeys(settings, {"steps", "timeout", "within", "interval"}, "");
  if (!keys) return std::unexpected(keys.error());
  HttpCheckSettings parsed;
  auto steps = settings.find("steps");
  if (steps == settings.end() || !steps->is_array() || steps->empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "steps: missing or empty; give at least one request with a url");
  }
  for (size_t i = 0; i < steps->size(); ++i) {
    auto step = ParseStep((*steps)[i], i);
    if (!step) return std::unexpected(step.error());
    parsed.steps.push_back(*std::move(step));
  }
  auto timeout = sj::Duration(settings, "timeout", "", parsed.timeout, false);
  if (!timeout) return std::unexpected(timeout.error());
  parsed.timeout = *timeout;
  auto within = sj::Duration(settings, "within", "", parsed.within, true);
  if (!within) return std::unexpected(within.error());
  parsed.within = *within;
  auto interval = sj::Duration(settings, "interval", "", parsed.interval, false);
  if (!interval) return std::unexpected(interval.error());
  parsed.interval = *interval;
  return parsed;
}

core::Result<std::unique_ptr<HttpCheck>> HttpCheck::Create(std::string name, const json& settings,
                                                           const SecretResolver& resolve_secret) {
  auto parsed = HttpCheckSettings::Parse(settings);
  if (!parsed) {
    return core::MakeError(parsed.error().code, "check {}: {}", name, parsed.error().message);
  }
  std::vector<std::map<std::string, std::string>> secret_values;
  for (const HttpStep& step : parsed->steps) {
    std::map<std::string, std::string> values;
    for (const auto& [header, reference] : step.secret_headers) {
      if (!resolve_secret) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "check {}: no secret resolver for header {}", name, header);
      }
      auto value = resolve_secret(reference);
      if (!value) {
        return core::MakeError(value.error().code, "check {}: {}: secret header {}: {}", name,
                               step.name, header, value.error().message);
      }
      values[header] = *value;
    }
    secret_values.push_back(std::move(values));
  }
  return std::unique_ptr<HttpCheck>(
      new HttpCheck(std::move(name), *std::move(parsed), std::move(secret_values)));
}

core::Result<std::string> HttpCheck::RunOnce(const CheckContext& context) const {
  std::map<std::string, std::string> variables = {{"incident_id", context.incident_id},
                                                  {"service", context.service}};
  std::string summary;
  for (size_t i = 0; i < settings_.steps.size(); ++i) {
    const HttpStep& step = settings_.steps[i];
    const auto fail = [&](std::string reason) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition, "{}: {}", step.name, reason);
    };

    http::Request request{.method = step.method};
    auto url = ExpandVariables(step.url, variables);
    if (!url) return fail(url.error().message);
    request.url = *url;
    auto body = ExpandVariables(step.body, variables);
    if (!body) return fail(body.error().message);
    request.body = *body;
    for (const auto& [header, value] : step.headers) {
      auto expanded = ExpandVariables(value, variables);
      if (!expanded) return fail(expanded.error().message);
      request.headers.Set(header, *expanded);
    }
    for (const auto& [header, value] : secret_values_[i]) request.headers.Set(header, value);
    request.total_timeout = settings_.timeout;
    request.connect_timeout = settings_.timeout;

    auto response = context.http->Send(request);
    if (!response) {
      return fail(fmt::format("{} {} got no response: {}", http::MethodName(step.method),
                              request.url, response.error().message));
    }
    if (response->status != step.expect_status) {
      return fail(fmt::format("{} {} returned HTTP {}, expected {}; body: {}",
                              http::MethodName(step.method), request.url, response->status,
                              step.expect_status, Excerpt(response->body)));
    }
    if (step.expect_body_contains &&
        response->body.find(*step.expect_body_contains) == std::string::npos) {
      return fail(fmt::format("the body of {} does not contain '{}'; body: {}", request.url,
                              *step.expect_body_contains, Excerpt(response->body)));
    }

    json document;
    if (!step.expect_json.empty() || !step.capture.empty()) {
      document = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
      if (document.is_discarded()) {
        return fail(
            fmt::format("the body of {} is not JSON: {}", request.url, Excerpt(response->body)));
      }
    }
    for (const auto& [pointer, expected] : step.expect_json) {
      auto actual = Lookup(document, pointer);
      if (!actual) return fail(fmt::format("{} is missing from the JSON body", pointer));
      if (!JsonValueMatches(expected, *actual)) {
        return fail(fmt::format("{} is {}, expected {}", pointer, actual->dump(), expected.dump()));
      }
    }
    for (const auto& [variable, pointer] : step.capture) {
      auto value = Lookup(document, pointer);
      if (!value) return fail(fmt::format("cannot capture {}: {} is missing", variable, pointer));
      variables[variable] = value->is_string() ? value->get<std::string>() : value->dump();
    }
    summary += fmt::format("{}{} {} {}", summary.empty() ? "" : "; ", step.name,
                           http::MethodName(step.method), response->status);
  }
  return summary;
}

CheckResult HttpCheck::Run(const CheckContext& context) const {
  core::Observation observation{.check = name(), .kind = "http"};
  const core::Time deadline =
      context.clock->Now() + std::chrono::duration_cast<core::Duration>(settings_.within);
  int attempt = 0;
  while (true) {
    ++attempt;
    auto outcome = RunOnce(context);
    observation.observed_at = context.clock->Now();
    if (outcome) {
      observation.result = core::ObservationResult::kPassed;
      observation.detail = fmt::format("{} step(s) passed (attempt {}): {}", settings_.steps.size(),
                                       attempt, *outcome);
      return {observation, std::nullopt};
    }
    observation.result = core::ObservationResult::kFailed;
    observation.detail = fmt::format("attempt {} failed at {}", attempt, outcome.error().message);
    if (context.clock->Now() >= deadline || context.stop_requested()) break;
    spdlog::info(
        "component=checks incident={} check={} event=http_attempt_failed attempt={} "
        "error=\"{}\"",
        context.incident_id, name(), attempt, outcome.error().message);
    SleepFor(context, settings_.interval);
  }
  return {observation, std::nullopt};
}

}  // namespace backout::checks
