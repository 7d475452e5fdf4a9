// Access reviews: the live grants per service compared with the roster, and attestations.
#include "app/access_review.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/try.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

constexpr int kPage = 500;

std::string TextAt(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string SettingOr(const ServiceConfig& service, const char* key, std::string_view fallback) {
  const std::string value = TextAt(service.provider.settings, key);
  return value.empty() ? std::string(fallback) : value;
}

// Returns who could roll `service` back with its tool directly, outside Backout. Backout can
// neither read nor limit these permissions, so the access review lists them as a limit to review
// in each tool.
std::string BypassPaths(const ServiceConfig& service) {
  const std::string& kind = service.provider.kind;
  if (kind == "kubernetes") {
    return fmt::format(
        "anyone whose Kubernetes RBAC allows patching Deployment {} in namespace {} (which "
        "`kubectl rollout undo` and `kubectl set image` need), or creating pods there",
        SettingOr(service, "deployment", "?"), SettingOr(service, "namespace", "default"));
  }
  if (kind == "git") {
    return fmt::format(
        "anyone who can push to branch {} of {}, including admins allowed to bypass branch "
        "protection",
        SettingOr(service, "branch", "(the default branch)"),
        SettingOr(service, "repository", "?"));
  }
  if (kind == "releases") {
    return fmt::format(
        "anyone with write access to the deploy root {}, who can switch the `current` link by "
        "hand",
        SettingOr(service, "root", "?"));
  }
  if (kind == "codedeploy") {
    return fmt::format(
        "every IAM principal allowed codedeploy:CreateDeployment (or "
        "codedeploy:StopDeployment with rollback) on application {}, deployment group {}",
        SettingOr(service, "application", "?"), SettingOr(service, "deployment_group", "?"));
  }
  if (kind == "launchdarkly") {
    return fmt::format(
        "members and API tokens with write access to flag {} in project {}, environment {}",
        SettingOr(service, "flag", "?"), SettingOr(service, "project", "?"),
        SettingOr(service, "environment", "?"));
  }
  if (kind == "unleash") {
    return fmt::format(
        "users and admin tokens with permission to update flag {} in environment {} of {}",
        SettingOr(service, "flag", "?"), SettingOr(service, "environment", "?"),
        SettingOr(service, "url", "?"));
  }
  if (kind == "command") {
    return "whoever can change what the runbook touches, by hand or with the runbook itself; "
           "review the runbook's targets";
  }
  return fmt::format("unknown for provider kind {}; review the tool's own permissions", kind);
}

// Rewrites a refusal that names the internal operation ("read_ledger needs the role ...") so it
// names what the caller asked for ("access review needs the role ...").
core::Error NameAccessReview(core::Error error) {
  const std::string_view operation = core::OperationName(core::Operation::kReadLedger);
  if (error.code == core::ErrorCode::kPermissionDenied && error.message.starts_with(operation)) {
    error.message.replace(0, operation.size(), "access review");
  }
  return error;
}

std::vector<std::string> RoleNames(const std::vector<core::Role>& roles) {
  std::vector<std::string> names;
  for (core::Role role : roles) names.emplace_back(core::RoleName(role));
  return names;
}

bool HasAnyRole(const core::User& user, const std::vector<core::Role>& roles) {
  return std::ranges::any_of(roles, [&](core::Role role) { return user.HasRole(role); });
}

// Reads every object of `kind`, in id order.
core::Result<std::vector<store::Object>> ListAll(store::Transaction& tx, const char* kind) {
  std::vector<store::Object> all;
  std::string after;
  while (true) {
    BACKOUT_TRY(auto page,
                tx.List(store::ListQuery{.kind = kind, .after_id = after, .limit = kPage}));
    for (store::Object& object : page) all.push_back(std::move(object));
    if (static_cast<int>(page.size()) < kPage) break;
    after = all.back().id;
  }
  return all;
}

core::Result<AccessAttestation> AttestationFromJson(const store::Object& object) {
  AccessAttestation attestation{.id = object.id,
                                .attested_by = TextAt(object.body, "attested_by"),
                                .sha256 = TextAt(object.body, "sha256"),
                                .findings = object.body.value("findings", 0)};
  BACKOUT_TRY(attestation.attested_at, core::ParseTime(TextAt(object.body, "attested_at")));
  return attestation;
}

core::Result<AccessReviewReport> BuildReport(store::Transaction& tx, const Settings& settings,
                                             core::Time now) {
  const core::Policy& policy = settings.policy;
  AccessReviewReport report{.generated_at = now};

  // Live tokens per user: neither revoked nor expired.
  std::map<std::string, std::vector<std::string>> tokens;
  BACKOUT_TRY(auto token_objects, ListAll(tx, kTokenKind));
  for (const store::Object& object : token_objects) {
    if (object.body.contains("revoked_at") && !object.body["revoked_at"].is_null()) continue;
    if (const std::string expires = TextAt(object.body, "expires_at"); !expires.empty()) {
      auto time = core::ParseTime(expires);
      if (time && *time <= now) continue;
    }
    tokens[TextAt(object.body, "user")].push_back(object.id);
  }

  std::vector<core::User> users;
  BACKOUT_TRY(auto user_objects, ListAll(tx, kUserKind));
  for (const store::Object& object : user_objects) {
    BACKOUT_TRY(core::User user, core::FromJson<core::User>(object.body));
    if (user.active) users.push_back(std::move(user));
  }

  for (const core::User& user : users) {
    auto on_roster = core::CheckOnRoster(user, policy);
    report.grants.push_back(AccessGrant{.user = user.name,
                                        .roles = RoleNames(user.roles),
                                        .services = user.services,
                                        .tokens = tokens[user.name],
                                        .on_roster = on_roster.has_value()});
    if (!on_roster) {
      report.findings.push_back(AccessFinding{
          .kind = "grant_not_on_roster", .user = user.name, .message = on_roster.error().message});
    }
  }
  for (const core::User& entry : policy.roster) {
    if (std::ranges::find(users, entry.name, &core::User::name) != users.end()) continue;
    report.findings.push_back(AccessFinding{
        .kind = "roster_without_grant",
        .user = entry.name,
        .message = fmt::format("{} is on the roster as {} but has no grant; create the user "
                               "with `backout user create` or remove it from `users`",
                               entry.name, fmt::join(RoleNames(entry.roles), ", "))});
  }

  for (const ServiceConfig& service : settings.config.services) {
    ServiceAccess access{
        .service = service.name, .provider = service.provider.kind, .bypass = BypassPaths(service)};
    for (const core::User& user : users) {
      if (HasAnyRole(user, policy.decider_roles)) access.deciders.push_back(user.name);
      if (HasAnyRole(user, policy.executor_roles) && user.HasService(service.name)) {
        access.executors.push_back(user.name);
      }
    }
    for (const core::User& entry : policy.roster) {
      if (HasAnyRole(entry, policy.decider_roles)) access.roster_deciders.push_back(entry.name);
      if (HasAnyRole(entry, policy.executor_roles) && entry.HasService(service.name)) {
        access.roster_executors.push_back(entry.name);
      }
    }
    report.services.push_back(std::move(access));
  }

  BACKOUT_TRY(std::string canonical, core::CanonicalForDigest(ListJson(report)));
  report.sha256 = ledger::ToHex(ledger::Sha256(canonical));

  BACKOUT_TRY(auto attestations, ListAll(tx, kAccessAttestationKind));
  for (const store::Object& object : attestations) {
    BACKOUT_TRY(AccessAttestation attestation, AttestationFromJson(object));
    if (!report.last_attestation ||
        attestation.attested_at >= report.last_attestation->attested_at) {
      report.last_attestation = std::move(attestation);
    }
  }
  return report;
}

}  // namespace

nlohmann::json ListJson(const AccessReviewReport& report) {
  nlohmann::json grants = nlohmann::json::array();
  for (const AccessGrant& grant : report.grants) {
    grants.push_back({{"user", grant.user},
                      {"roles", grant.roles},
                      {"services", grant.services},
                      {"tokens", grant.tokens},
                      {"on_roster", grant.on_roster}});
  }
  nlohmann::json services = nlohmann::json::array();
  for (const ServiceAccess& access : report.services) {
    services.push_back({{"service", access.service},
                        {"provider", access.provider},
                        {"deciders", access.deciders},
                        {"executors", access.executors},
                        {"roster_deciders", access.roster_deciders},
                        {"roster_executors", access.roster_executors},
                        {"bypass", access.bypass}});
  }
  nlohmann::json findings = nlohmann::json::array();
  for (const AccessFinding& finding : report.findings) {
    findings.push_back(
        {{"kind", finding.kind}, {"user", finding.user}, {"message", finding.message}});
  }
  return {{"grants", grants}, {"services", services}, {"findings", findings}};
}

nlohmann::json ToJson(const AccessAttestation& attestation) {
  return {{"id", attestation.id},
          {"attested_by", attestation.attested_by},
          {"attested_at", core::FormatTime(attestation.attested_at)},
          {"sha256", attestation.sha256},
          {"findings", attestation.findings}};
}

nlohmann::json ToJson(const AccessReviewReport& report) {
  nlohmann::json out = ListJson(report);
  out["generated_at"] = core::FormatTime(report.generated_at);
  out["sha256"] = report.sha256;
  out["last_attestation"] =
      report.last_attestation ? ToJson(*report.last_attestation) : nlohmann::json(nullptr);
  return out;
}

core::Result<AccessReviewReport> ControlPlane::AccessReview(const Caller& caller) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  AccessReviewReport report;
  BACKOUT_CHECK(Read(
      caller, "access.review", "access_review", [&](store::Transaction& tx) -> core::Result<void> {
        auto permitted =
            core::CheckOperation(caller.user, core::Operation::kReadLedger, current->policy);
        if (!permitted) return std::unexpected(NameAccessReview(permitted.error()));
        BACKOUT_TRY(report, BuildReport(tx, *current, now));
        return {};
      }));
  return report;
}

core::Result<AccessAttestation> ControlPlane::AttestAccessReview(const Caller& caller) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  AccessAttestation attestation;
  BACKOUT_CHECK(Write(
      caller, "access.attest", "access_review", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        if (!caller.user.HasRole(core::Role::kAdmin) &&
            !caller.user.HasRole(core::Role::kEngineeringLead)) {
          return core::MakeError(core::ErrorCode::kPermissionDenied,
                                 "attesting an access review needs the role admin or "
                                 "engineering-lead; user {} has neither",
                                 caller.name());
        }
        BACKOUT_TRY(AccessReviewReport report, BuildReport(tx, *current, now));
        BACKOUT_TRY(int64_t number, tx.NextNumber(kAccessAttestationKind));
        attestation = AccessAttestation{.id = fmt::format("AR-{}", number),
                                        .attested_by = caller.name(),
                                        .attested_at = now,
                                        .sha256 = report.sha256,
                                        .findings = static_cast<int>(report.findings.size())};
        nlohmann::json body = ToJson(attestation);
        body["list"] = ListJson(report);
        store::Object object{
            .kind = kAccessAttestationKind, .id = attestation.id, .body = std::move(body)};
        BACKOUT_CHECK(tx.Put(object));
        return Ledger(tx, caller, "access_review.attested", "access_review",
                      {{"id", attestation.id},
                       {"sha256", attestation.sha256},
                       {"grants", report.grants.size()},
                       {"findings", attestation.findings}});
      }));
  spdlog::info("component=app event=access_review_attested id={} by={} sha256={}", attestation.id,
               caller.name(), attestation.sha256);
  return attestation;
}

}  // namespace backout::app
