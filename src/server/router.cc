#include "server/router.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace backout::server {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = path.starts_with('/') ? 1 : 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool MatchPath(std::string_view pattern, std::string_view path,
               std::map<std::string, std::string>& parameters) {
  const auto pattern_segments = SplitPath(pattern);
  const auto path_segments = SplitPath(path);
  if (pattern_segments.size() != path_segments.size()) return false;

  std::map<std::string, std::string> found;
  for (size_t i = 0; i < pattern_segments.size(); ++i) {
    const std::string_view want = pattern_segments[i];
    const std::string_view have = path_segments[i];
    if (want.starts_with('{') && want.ends_with('}')) {
      if (have.empty()) return false;
      found.emplace(std::string(want.substr(1, want.size() - 2)), std::string(have));
    } else if (want != have) {
      return false;
    }
  }
  parameters = std::move(found);
  return true;
}

}  // namespace

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match match;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> parameters;
    if (!MatchPath(route.path, path, parameters)) continue;
    if (route.method == method) {
      match.status = MatchStatus::kFound;
      match.route = &route;
      match.path_parameters = std::move(parameters);
      return match;
    }
    match.status = MatchStatus::kWrongMethod;
    match.allowed_methods.push_back(route.method);
  }
  return match;
}

namespace {

// Checks the value of a query parameter declared as an integer: decimal digits only, with no sign
// and no leading zero, as JSON writes integers, so each value has one spelling. The range starts
// at 0 unless the schema sets a minimum.
core::Result<void> CheckIntegerParameter(const std::string& name, const std::string& value,
                                         const Schema& schema) {
  const int64_t minimum = schema.minimum.value_or(0);
  const std::string range = schema.maximum ? fmt::format("from {} to {}", minimum, *schema.maximum)
                                           : fmt::format("of {} or more", minimum);
  const bool digits_only = std::ranges::all_of(value, [](char c) { return c >= '0' && c <= '9'; });
  const bool leading_zero = value.size() > 1 && value.front() == '0';
  int64_t number = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  const bool parsed = error == std::errc() && end == value.data() + value.size();
  if (digits_only && !value.empty() && !leading_zero && error == std::errc::result_out_of_range) {
    const int64_t maximum = schema.maximum.value_or(std::numeric_limits<int64_t>::max());
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "query parameter `{}` is too large: the maximum is {}, got \"{}\"", name,
                           maximum, value);
  }
  if (!digits_only || leading_zero || !parsed || number < minimum ||
      (schema.maximum && number > *schema.maximum)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "query parameter `{}` must be a whole number {} without leading zeros, "
                           "got \"{}\"",
                           name, range, value);
  }
  return {};
}

}  // namespace

core::Result<void> ValidateQuery(const Route& route,
                                 const std::map<std::string, std::string>& query) {
  for (const auto& [name, value] : query) {
    auto declared = std::find_if(route.query.begin(), route.query.end(),
                                 [&](const QueryParameter& p) { return p.name == name; });
    if (declared == route.query.end()) {
      std::vector<std::string> names;
      for (const QueryParameter& parameter : route.query) names.push_back(parameter.name);
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "unknown query parameter `{}` for {} {}; allowed: {}", name,
                             route.method, route.path,
                             names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")));
    }
    // An empty filter would match everything, so it is an error rather than no filter. The page
    // cursor `after` is the exception: empty means the first page.
    if (value.empty() && name != "after") {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "query parameter `{}` is empty; give a value or leave the parameter "
                             "out",
                             name);
    }
    if (declared->schema.type == JsonType::kInteger) {
      if (auto checked = CheckIntegerParameter(name, value, declared->schema); !checked) {
        return checked;
      }
    }
    if (!declared->schema.enum_values.empty() &&
        std::find(declared->schema.enum_values.begin(), declared->schema.enum_values.end(),
                  value) == declared->schema.enum_values.end()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "query parameter `{}` must be one of {}, got \"{}\"", name,
                             fmt::join(declared->schema.enum_values, ", "), value);
    }
  }
  for (const QueryParameter& parameter : route.query) {
    if (parameter.required && !query.contains(parameter.name)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "missing required query parameter `{0}` for {1} {2}; add {0}=VALUE "
                             "to the query. {0}: {3}",
                             parameter.name, route.method, route.path,
                             parameter.schema.description);
    }
  }
  return {};
}

}  // namespace backout::server
