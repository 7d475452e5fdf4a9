#include "app/config_fields.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <ranges>
#include <sstream>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "app/review_template.h"

namespace backout::app::config_internal {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;

// Every field that contains a secret. `[]` is any list index and `*` any key of a mapping.
constexpr std::string_view kSecretFields[] = {
    "tls.certificate",
    "tls.private_key",
    "metrics.token",
    "services[].provider.env.*",
    "services[].provider.credentials.*",
    "services[].checks[].env.*",
    "notifications.webhooks[].secret",
    "signals.alertmanager.bearer_token",
    "signals.alertmanager.hmac_secret",
    "services[].checks[].bearer_token",
    "services[].checks[].steps[].secret_headers.*",
};

bool MatchesSecretField(const std::vector<std::string>& segments) {
  for (std::string_view pattern : kSecretFields) {
    size_t index = 0;
    bool matches = true;
    for (const auto part : std::views::split(pattern, '.')) {
      const std::string_view expected(part.begin(), part.end());
      if (index >= segments.size() || (expected != "*" && expected != segments[index])) {
        matches = false;
        break;
      }
      ++index;
    }
    if (matches && index == segments.size()) return true;
  }
  return false;
}

// Walks the document below `value` and checks every value at a path of kSecretFields.
// `segments` is the path of `value`, with list indexes written as `[]`.
void CheckSecretsBelow(ParseContext& context, const YamlValue& value,
                       std::vector<std::string>& segments) {
  YamlReader& reader = context.reader;
  if (!reader.ok()) return;

  if (value.node.IsScalar()) {
    if (!MatchesSecretField(segments)) return;
    auto reference = SecretRef::Parse(value.node.Scalar(), context.base_dir);
    if (!reference) reader.Fail(value, reference.error().message);
    return;
  }

  if (value.node.IsMap()) {
    auto fields = reader.Mapping(value);
    if (!fields) return;
    for (const auto& [key, child] : fields->entries()) {
      segments.push_back(key);
      CheckSecretsBelow(context, child, segments);
      segments.pop_back();
    }
    return;
  }

  if (value.node.IsSequence() && !segments.empty()) {
    auto items = reader.List(value);
    if (!items) return;
    segments.back() += "[]";
    for (const YamlValue& item : *items) CheckSecretsBelow(context, item, segments);
    segments.back().resize(segments.back().size() - 2);
  }
}

// Returns whether a postgresql:// URL contains a password, in its user information
// (user:password@host) or as a `password` query parameter.
bool HasInlinePassword(std::string_view url) {
  const size_t scheme_end = url.find("://");
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos) {
    return true;
  }
  const size_t query = rest.find('?');
  if (query == std::string_view::npos) return false;
  for (const auto part : std::views::split(rest.substr(query + 1), '&')) {
    if (std::string_view(part.begin(), part.end()).starts_with("password=")) return true;
  }
  return false;
}

}  // namespace

void CheckSecretReferences(ParseContext& context, const YamlValue& root) {
  std::vector<std::string> segments;
  CheckSecretsBelow(context, root, segments);
}

std::optional<SecretRef> ReadSecret(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  auto reference = SecretRef::Parse(*text, context.base_dir);
  if (!reference) {
    context.reader.Fail(value, reference.error().message);
    return std::nullopt;
  }
  return *reference;
}

// Names appear in URLs and command lines, so they are limited to letters, digits, '.', '_' and
// '-', starting with a letter or digit.
std::optional<std::string> CheckName(const std::string& name) {
  const auto is_alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool valid = !name.empty() && name.size() <= 128 && is_alnum(name[0]);
  for (char c : name) valid = valid && (is_alnum(c) || c == '.' || c == '_' || c == '-');
  if (valid) return std::nullopt;
  return fmt::format(
      "invalid name '{}': use up to 128 letters, digits, '.', '_' and '-', starting with a "
      "letter or digit",
      name);
}

core::Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const auto invalid = [&](std::string_view reason) {
    return core::MakeError(ErrorCode::kInvalidArgument, "invalid address '{}': {}", text, reason);
  };
  constexpr std::string_view kExpected = "expected HOST:PORT such as 127.0.0.1:8470";

  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return invalid(kExpected);
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);

  if (host.starts_with('[') && host.ends_with(']') && host.size() > 2) {
    host = host.substr(1, host.size() - 2);
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return invalid("put an IPv6 host in brackets, such as [::1]:8470");
  }
  if (host.empty()) return invalid(fmt::format("the host is empty, {}", kExpected));

  unsigned port = 0;
  const char* port_end = port_text.data() + port_text.size();
  const auto [end, ec] = std::from_chars(port_text.data(), port_end, port);
  if (port_text.empty() || ec != std::errc() || end != port_end || port > 65535) {
    return invalid("the port must be a number from 0 to 65535");
  }
  return ListenAddress{std::string(host), static_cast<uint16_t>(port)};
}

core::Result<std::string> ParseDatabase(std::string_view url, const fs::path& base_dir) {
  if (url.starts_with("sqlite:")) {
    const std::string_view path = url.substr(std::string_view("sqlite:").size());
    if (path.empty()) {
      return core::MakeError(ErrorCode::kInvalidArgument,
                             "invalid database 'sqlite:': the file path is empty");
    }
    if (path == ":memory:") return std::string(url);
    std::error_code error;
    const fs::path absolute = fs::absolute(base_dir / path, error).lexically_normal();
    if (error) {
      return core::MakeError(ErrorCode::kInvalidArgument,
                             "invalid database '{}': cannot make the path absolute: {}", url,
                             error.message());
    }
    return fmt::format("sqlite:{}", absolute.string());
  }

  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    if (HasInlinePassword(url)) {
      return core::MakeError(ErrorCode::kInvalidArgument,
                             "the PostgreSQL URL contains a password, but secrets must not be "
                             "written inline: remove it and set PGPASSWORD or PGPASSFILE in the "
                             "server's environment");
    }
    return std::string(url);
  }

  return core::MakeError(
      ErrorCode::kInvalidArgument,
      "unsupported database URL: expected sqlite:PATH or postgresql://USER@HOST/DATABASE");
}

std::optional<fs::path> ReadPath(ParseContext& context, const YamlValue& value) {
  auto text = context.reader.String(value);
  if (!text) return std::nullopt;
  if (text->empty()) {
    context.reader.Fail(value, "the path is empty");
    return std::nullopt;
  }
  std::error_code error;
  fs::path absolute = fs::absolute(context.base_dir / *text, error).lexically_normal();
  if (error) {
    context.reader.Fail(value,
                        fmt::format("cannot make '{}' absolute: {}", *text, error.message()));
    return std::nullopt;
  }
  return absolute;
}

// ---- Reconciliation and notifications -------------------------------------------------------

namespace {

constexpr std::string_view kNotificationKeys[] = {"webhooks", "max_attempts", "retry_initial",
                                                  "retry_max"};
constexpr std::string_view kWebhookKeys[] = {"name", "url", "secret", "events", "slack"};

std::optional<WebhookConfig> ParseWebhook(ParseContext& context, const YamlValue& value,
                                          std::map<std::string, int, std::less<>>& first_lines) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kWebhookKeys);
  if (!fields) return std::nullopt;

  const YamlValue* name_value = reader.Required(*fields, "name");
  const YamlValue* url_value = name_value ? reader.Required(*fields, "url") : nullptr;
  const YamlValue* secret_value = url_value ? reader.Required(*fields, "secret") : nullptr;
  if (secret_value == nullptr) return std::nullopt;

  auto name = reader.String(*name_value);
  if (!name) return std::nullopt;
  if (auto problem = CheckName(*name)) {
    reader.Fail(*name_value, *problem);
    return std::nullopt;
  }
  if (auto [seen, inserted] = first_lines.emplace(*name, name_value->line); !inserted) {
    reader.Fail(*name_value,
                fmt::format("webhook '{}' is already defined on line {}", *name, seen->second));
    return std::nullopt;
  }

  // The URL is not quoted in messages, because a chat webhook's URL is itself a credential.
  auto url = reader.String(*url_value);
  if (!url) return std::nullopt;
  if (!url->starts_with("http://") && !url->starts_with("https://")) {
    reader.Fail(*url_value, "invalid URL: use an http:// or https:// URL");
    return std::nullopt;
  }

  auto secret = ReadSecret(context, *secret_value);
  if (!secret) return std::nullopt;
  WebhookConfig webhook{.name = *name, .url = *url, .secret = *secret};

  if (const YamlValue* events = fields->Find("events")) {
    const auto known = NotificationEvents();
    auto names = reader.StringList(*events, [&](const std::string& event) {
      if (std::ranges::find(known, event) != known.end()) return std::optional<std::string>();
      return std::optional<std::string>(
          fmt::format("unknown event '{}', expected one of: {}", event, fmt::join(known, ", ")));
    });
    if (!names) return std::nullopt;
    webhook.events = std::move(*names);
  }
  if (const YamlValue* slack = fields->Find("slack")) {
    auto flag = reader.Bool(*slack);
    if (!flag) return std::nullopt;
    webhook.slack = *flag;
  }
  return webhook;
}

}  // namespace

std::optional<NotificationsConfig> ParseNotifications(ParseContext& context,
                                                      const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kNotificationKeys);
  if (!fields) return std::nullopt;

  NotificationsConfig notifications;
  if (const YamlValue* webhooks = fields->Find("webhooks")) {
    auto items = reader.List(*webhooks);
    if (!items) return std::nullopt;
    std::map<std::string, int, std::less<>> first_lines;
    for (const YamlValue& item : *items) {
      auto webhook = ParseWebhook(context, item, first_lines);
      if (!webhook) return std::nullopt;
      notifications.webhooks.push_back(std::move(*webhook));
    }
  }
  if (const YamlValue* attempts = fields->Find("max_attempts")) {
    auto number = reader.Integer(*attempts);
    if (!number) return std::nullopt;
    if (*number < 1 || *number > 100) {
      reader.Fail(*attempts, fmt::format("invalid max_attempts {}: use a whole number from 1 to "
                                         "100",
                                         *number));
      return std::nullopt;
    }
    notifications.max_attempts = static_cast<int>(*number);
  }
  if (const YamlValue* initial = fields->Find("retry_initial")) {
    auto duration = reader.Duration(*initial);
    if (!duration) return std::nullopt;
    notifications.retry_initial = *duration;
  }
  if (const YamlValue* maximum = fields->Find("retry_max")) {
    auto duration = reader.Duration(*maximum);
    if (!duration) return std::nullopt;
    notifications.retry_max = *duration;
  }
  if (notifications.retry_max < notifications.retry_initial) {
    reader.Fail(value, "retry_max must be at least retry_initial");
    return std::nullopt;
  }
  return notifications;
}

namespace {

// Reads a duration of the `http` block, which must lie from 100ms to 1h.
std::optional<core::Duration> ReadHttpTimeout(YamlReader& reader, const YamlValue& value,
                                              std::string_view key) {
  auto duration = reader.Duration(value);
  if (!duration) return std::nullopt;
  if (*duration < std::chrono::milliseconds(100) || *duration > std::chrono::hours(1)) {
    reader.Fail(value, fmt::format("invalid {} '{}': use a duration from 100ms to 1h", key,
                                   value.node.Scalar()));
    return std::nullopt;
  }
  return duration;
}

}  // namespace

std::optional<HttpConfig> ParseHttp(ParseContext& context, const YamlValue& value) {
  static constexpr std::string_view kHttpKeys[] = {"request_timeout", "idle_timeout",
                                                   "max_connections_per_client"};
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kHttpKeys);
  if (!fields) return std::nullopt;

  HttpConfig http;
  if (const YamlValue* timeout = fields->Find("request_timeout")) {
    auto duration = ReadHttpTimeout(reader, *timeout, "request_timeout");
    if (!duration) return std::nullopt;
    http.request_timeout = *duration;
  }
  if (const YamlValue* timeout = fields->Find("idle_timeout")) {
    auto duration = ReadHttpTimeout(reader, *timeout, "idle_timeout");
    if (!duration) return std::nullopt;
    http.idle_timeout = *duration;
  }
  if (const YamlValue* limit = fields->Find("max_connections_per_client")) {
    auto number = reader.Integer(*limit);
    if (!number) return std::nullopt;
    if (*number < 0) {
      reader.Fail(*limit, fmt::format("invalid max_connections_per_client {}: use a whole number "
                                      "of 1 or more, or 0 for no limit",
                                      *number));
      return std::nullopt;
    }
    http.max_connections_per_client = *number;
  }
  return http;
}

std::optional<core::Duration> ReadReconcileInterval(ParseContext& context, const YamlValue& value) {
  auto interval = context.reader.Duration(value);
  if (!interval) return std::nullopt;
  if (*interval < std::chrono::seconds(1)) {
    context.reader.Fail(value, "invalid reconcile_interval: use one second or more");
    return std::nullopt;
  }
  return *interval;
}

// ---- Post-incident reviews ------------------------------------------------------------------

std::optional<ReviewConfig> ParseReview(ParseContext& context, const YamlValue& value) {
  static constexpr std::string_view kReviewKeys[] = {"template"};
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kReviewKeys);
  if (!fields) return std::nullopt;

  ReviewConfig review;
  if (const YamlValue* file = fields->Find("template")) {
    auto path = ReadPath(context, *file);
    if (!path) return std::nullopt;
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      reader.Fail(*file, fmt::format("cannot read review template {}: {}; check the path",
                                     path->string(), std::strerror(errno)));
      return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto checked = CheckReviewTemplate(text.str());
    if (!checked) {
      reader.Fail(*file, fmt::format("{}: {}", path->string(), checked.error().message));
      return std::nullopt;
    }
    review.template_path = *path;
    review.template_text = text.str();
  }
  return review;
}

// ---- The ledger ------------------------------------------------------------------------------

std::optional<LedgerConfig> ParseLedger(ParseContext& context, const YamlValue& value) {
  static constexpr std::string_view kLedgerKeys[] = {"checkpoint_interval"};
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kLedgerKeys);
  if (!fields) return std::nullopt;

  LedgerConfig ledger;
  if (const YamlValue* interval = fields->Find("checkpoint_interval")) {
    auto text = reader.String(*interval);
    if (!text) return std::nullopt;
    if (*text == "0" || *text == "0s") {
      ledger.checkpoint_interval = core::Duration::zero();
      return ledger;
    }
    auto duration = reader.Duration(*interval);
    if (!duration) return std::nullopt;
    if (*duration > std::chrono::hours(1)) {
      reader.Fail(*interval, fmt::format("invalid checkpoint_interval '{}': use at most 1h, or 0 "
                                         "to sign a checkpoint in every write",
                                         *text));
      return std::nullopt;
    }
    ledger.checkpoint_interval = *duration;
  }
  return ledger;
}

}  // namespace backout::app::config_internal
