#include "server/api_json.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "core/time.h"

namespace backout::server {
namespace {

using nlohmann::json;

std::string String(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? std::string() : it->get<std::string>();
}

bool Bool(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && !it->is_null() && it->get<bool>();
}

std::vector<std::string> Strings(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return {};
  return it->get<std::vector<std::string>>();
}

core::Result<std::optional<core::Time>> OptionalTime(const json& body, const char* key) {
  const std::string text = String(body, key);
  if (text.empty()) return std::nullopt;
  auto time = core::ParseTime(text);
  if (!time) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field `{}`: {}", key,
                           time.error().message);
  }
  return *time;
}

}  // namespace

json IncidentJson(const core::Incident& incident) {
  json out = incident;
  out["suspected_change"] =
      incident.suspected_change_id ? json(*incident.suspected_change_id) : json(nullptr);
  out["review"] = incident.review_markdown;
  out["created_at"] = core::FormatTime(incident.opened_at);
  core::Time updated = incident.opened_at;
  for (const core::TimelineEvent& event : incident.timeline)
    updated = std::max(updated, event.time);
  out["updated_at"] = core::FormatTime(updated);
  return out;
}

json JobJson(const app::JobView& job) {
  return {{"id", job.id},
          {"kind", job.kind},
          {"state", job.state},
          {"attempts", job.attempts},
          {"subject", job.subject},
          {"outcome", job.outcome.empty() ? json(nullptr) : json(job.outcome)},
          {"message", job.message.empty() ? json(nullptr) : json(job.message)},
          {"progress", job.progress}};
}

core::Result<app::NewUser> ReadNewUser(const json& body) {
  app::NewUser user{.name = String(body, "name"), .services = Strings(body, "services")};
  const std::vector<std::string> roles = Strings(body, "roles");
  for (size_t i = 0; i < roles.size(); ++i) {
    auto role = core::ParseRole(roles[i]);
    if (!role) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "field `roles[{}]`: {}", i,
                             role.error().message);
    }
    user.roles.push_back(*role);
  }
  auto expires = OptionalTime(body, "expires_at");
  if (!expires) return std::unexpected(expires.error());
  user.expires_at = *expires;
  return user;
}

core::Result<app::NewChange> ReadNewChange(const json& body) {
  app::NewChange change{.service = String(body, "service"),
                        .environment = String(body, "environment"),
                        .version = String(body, "version"),
                        .previous_version = String(body, "previous_version"),
                        .external_ticket = String(body, "external_ticket"),
                        .approver = String(body, "approver"),
                        .deployer = String(body, "deployer"),
                        .risk = String(body, "risk")};
  auto time = OptionalTime(body, "time");
  if (!time) return std::unexpected(time.error());
  change.time = *time;
  if (auto migrations = body.find("migrations");
      migrations != body.end() && !migrations->is_null()) {
    for (const json& migration : *migrations) {
      change.migrations.push_back(
          core::Migration{.id = migration.at("id").get<std::string>(),
                          .reversible = migration.at("reversible").get<bool>()});
    }
  }
  return change;
}

core::Result<app::NewIncident> ReadNewIncident(const json& body) {
  auto severity = core::ParseSeverity(String(body, "severity"));
  if (!severity) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field `severity`: {}",
                           severity.error().message);
  }
  app::NewIncident incident{.service = String(body, "service"),
                            .severity = *severity,
                            .title = String(body, "title"),
                            .external_ticket = String(body, "external_ticket")};
  if (const std::string change = String(body, "suspected_change"); !change.empty()) {
    incident.suspected_change = change;
  }
  return incident;
}

core::Result<app::DecisionRequest> ReadDecision(const json& body) {
  auto kind = core::ParseDecisionKind(String(body, "decision"));
  if (!kind) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field `decision`: {}",
                           kind.error().message);
  }
  return app::DecisionRequest{.kind = *kind,
                              .reason = String(body, "reason"),
                              .approved_digest = String(body, "approved_digest"),
                              .override_reason = String(body, "override_reason"),
                              .retroactive = Bool(body, "retroactive")};
}

core::Result<app::DocumentRequest> ReadDocument(const json& body) {
  app::DocumentRequest request{.root_cause = String(body, "root_cause"),
                               .contributing_factors = Strings(body, "contributing_factors")};
  if (auto attachments = body.find("attachments");
      attachments != body.end() && !attachments->is_null()) {
    for (const json& attachment : *attachments) {
      request.attachments.push_back(
          app::NewAttachment{.name = attachment.at("name").get<std::string>(),
                             .content_base64 = attachment.at("content_base64").get<std::string>()});
    }
  }
  return request;
}

core::Result<app::NewActionItem> ReadNewActionItem(const json& body) {
  app::NewActionItem item{.title = String(body, "title"),
                          .owner = String(body, "owner"),
                          .no_action = Bool(body, "no_action"),
                          .reason = String(body, "reason")};
  if (const std::string due = String(body, "due"); !due.empty()) {
    auto date = core::ParseDate(due);
    if (!date) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "field `due`: {}",
                             date.error().message);
    }
    item.due = *date;
  }
  return item;
}

core::Result<app::ActionItemCompletion> ReadCompletion(const json& body) {
  return app::ActionItemCompletion{.not_doing = Bool(body, "not_doing"),
                                   .evidence = String(body, "evidence"),
                                   .reason = String(body, "reason")};
}

Schema PageLimitSchema() {
  return IntegerSchema(fmt::format("Items per page, {} to {}; {} when absent.", kMinPageLimit,
                                   kMaxPageLimit, kDefaultPageLimit),
                       kMinPageLimit, kMaxPageLimit);
}

core::Result<void> ReadPageLimit(const HttpRequest& request, app::ListOptions& options) {
  options.limit = kDefaultPageLimit;
  auto it = request.query.find("limit");
  if (it == request.query.end()) return {};
  const std::string& value = it->second;
  int limit = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), limit);
  const bool leading_zero = value.size() > 1 && value.front() == '0';
  if (error != std::errc() || end != value.data() + value.size() || leading_zero ||
      limit < kMinPageLimit || limit > kMaxPageLimit) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "query parameter `limit` must be a whole number from {} to {} without "
                           "leading zeros, got \"{}\"",
                           kMinPageLimit, kMaxPageLimit, value);
  }
  options.limit = limit;
  return {};
}

core::Result<void> ReadPageCursor(const HttpRequest& request, IdForm form, std::string_view prefix,
                                  app::ListOptions& options) {
  auto it = request.query.find("after");
  if (it == request.query.end() || it->second.empty()) return {};
  const std::string& value = it->second;
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto is_alnum = [&](char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  bool valid = false;
  std::string expected;
  switch (form) {
    case IdForm::kNumbered: {
      const std::string_view number =
          std::string_view(value).substr(value.starts_with(prefix) ? prefix.size() : value.size());
      valid = value.starts_with(prefix) && !number.empty() && number.size() <= 19 &&
              number.front() != '0' && std::ranges::all_of(number, is_digit);
      expected = fmt::format("{}<number>, such as {}1, with no leading zeros", prefix, prefix);
      break;
    }
    case IdForm::kName:
      valid = value.size() <= 128 && is_alnum(value.front()) &&
              std::ranges::all_of(
                  value, [&](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
      expected = "a user name: letters, digits, '.', '_' and '-', starting with a letter or digit";
      break;
    case IdForm::kSignal:
      for (std::string_view source : {"am:", "rule:", "probe:"}) {
        valid = valid || (value.starts_with(source) && value.size() > source.size());
      }
      expected = "a signal id, such as am:..., rule:... or probe:...";
      break;
  }
  if (!valid) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid query parameter `after` '{}': expected {}; pass the "
                           "next_after of the previous page, or omit `after` for the first page",
                           value, expected);
  }
  options.after = value;
  return {};
}

}  // namespace backout::server
