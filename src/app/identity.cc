// Start-up, configuration, users and tokens.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/tokens.h"
#include "app/try.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

constexpr char kAdminName[] = "admin";
constexpr char kAdminTokenFile[] = "admin.token";

// A stored token: only its hash, who holds it and its life span.
struct TokenRecord {
  std::string user;
  std::string sha256;
  std::string created_by;
  std::optional<core::Time> expires_at;
  std::optional<core::Time> revoked_at;
  std::string revoked_by;
};

nlohmann::json OptionalTime(const std::optional<core::Time>& time) {
  return time ? nlohmann::json(core::FormatTime(*time)) : nlohmann::json(nullptr);
}

core::Result<std::optional<core::Time>> ReadOptionalTime(const nlohmann::json& json,
                                                         const char* key) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    return core::MakeError(core::ErrorCode::kCorruption, "token field {} is not a string", key);
  }
  BACKOUT_TRY(core::Time time, core::ParseTime(it->get<std::string>()));
  return time;
}

nlohmann::json TokenJson(const TokenRecord& token) {
  return {{"user", token.user},
          {"sha256", token.sha256},
          {"created_by", token.created_by},
          {"expires_at", OptionalTime(token.expires_at)},
          {"revoked_at", OptionalTime(token.revoked_at)},
          {"revoked_by", token.revoked_by}};
}

core::Result<TokenRecord> TokenFromJson(const nlohmann::json& json) {
  TokenRecord token;
  if (!json.is_object() || !json.contains("user") || !json.contains("sha256")) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored token lacks user or sha256");
  }
  token.user = json["user"].get<std::string>();
  token.sha256 = json["sha256"].get<std::string>();
  token.created_by = json.value("created_by", "");
  token.revoked_by = json.value("revoked_by", "");
  BACKOUT_TRY(token.expires_at, ReadOptionalTime(json, "expires_at"));
  BACKOUT_TRY(token.revoked_at, ReadOptionalTime(json, "revoked_at"));
  return token;
}

core::Result<void> CheckUserAdmin(const core::User& user, const core::Policy& policy) {
  return core::CheckOperation(user, core::Operation::kManageUsers, policy);
}

// Issues a token for `user` in `tx` and returns it with its id.
core::Result<IssuedToken> StoreNewToken(store::Transaction& tx, const std::string& user,
                                        const std::string& created_by,
                                        std::optional<core::Time> expires_at) {
  BACKOUT_TRY(int64_t number, tx.NextNumber(kTokenKind));
  BACKOUT_TRY(IssuedToken token, IssueToken(number));
  store::Object object{.kind = kTokenKind,
                       .id = token.token_id,
                       .body = TokenJson(TokenRecord{.user = user,
                                                     .sha256 = token.sha256,
                                                     .created_by = created_by,
                                                     .expires_at = expires_at})};
  BACKOUT_CHECK(tx.Put(object));
  return token;
}

// Writes the admin token to `path` with mode 0600, replacing an older file.
core::Result<void> WriteSecretFile(const std::filesystem::path& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "could not create {}: {}; check that data_dir is writable",
                           path.string(), std::strerror(errno));
  }
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok) {
    return core::MakeError(core::ErrorCode::kUnavailable, "could not write {}: {}", path.string(),
                           std::strerror(saved_errno));
  }
  return {};
}

}  // namespace

Caller SystemCaller() {
  return Caller{.user = core::User{.name = "system", .roles = {core::Role::kSystem}}};
}

core::Result<std::shared_ptr<const Settings>> Settings::Create(Config config,
                                                               ProviderMap providers) {
  auto settings = std::make_shared<Settings>();
  core::Policy& policy = settings->policy;
  policy.separation_of_duties = config.policy.separation_of_duties;
  policy.break_glass_window =
      std::chrono::duration_cast<std::chrono::hours>(config.policy.break_glass_approval_window);
  policy.closure.root_cause = config.policy.closure.root_cause;
  policy.closure.recovered_or_no_go = config.policy.closure.recovered_or_no_go;
  policy.closure.review = config.policy.closure.review;
  policy.closure.action_items = config.policy.closure.action_items;

  auto parse_roles = [](const std::vector<std::string>& names,
                        std::string_view where) -> core::Result<std::vector<core::Role>> {
    std::vector<core::Role> roles;
    for (const std::string& name : names) {
      auto role = core::ParseRole(name);
      if (!role) return std::unexpected(role.error().WithContext(where));
      roles.push_back(*role);
    }
    return roles;
  };
  BACKOUT_TRY(policy.decider_roles, parse_roles(config.policy.decider_roles, "policy.deciders"));
  BACKOUT_TRY(policy.executor_roles, parse_roles(config.policy.executor_roles, "policy.executors"));

  bool admin_listed = false;
  for (const UserConfig& entry : config.users) {
    core::User user{.name = entry.name, .services = entry.services};
    BACKOUT_TRY(user.roles, parse_roles(entry.roles, fmt::format("users entry {}", entry.name)));
    admin_listed = admin_listed || entry.name == kAdminName;
    policy.roster.push_back(std::move(user));
  }
  if (!admin_listed) {
    policy.roster.push_back(core::User{.name = kAdminName, .roles = {core::Role::kAdmin}});
  }

  settings->config_sha256 = ledger::ToHex(ledger::Sha256(config.source_text));
  settings->config = std::move(config);
  settings->providers = std::move(providers);
  return std::shared_ptr<const Settings>(std::move(settings));
}

ControlPlane::ControlPlane(store::Store& store, const core::Clock& clock,
                           std::shared_ptr<const Settings> settings)
    : store_(store), clock_(clock), settings_(std::move(settings)) {}

std::shared_ptr<const Settings> ControlPlane::settings() const {
  std::lock_guard lock(settings_mutex_);
  return settings_;
}

core::Result<void> ControlPlane::Write(const Caller& caller, std::string_view action,
                                       std::string_view subject,
                                       const store::TransactionBody& body) {
  core::Result<void> result = store_.Write(body);
  if (!result && result.error().code == core::ErrorCode::kPermissionDenied) {
    (void)RecordRefusal(caller, action, subject, result.error());
  }
  return result;
}

core::Result<void> ControlPlane::Read(const Caller& caller, std::string_view action,
                                      std::string_view subject,
                                      const store::TransactionBody& body) {
  core::Result<void> result = store_.Read(body);
  if (!result && result.error().code == core::ErrorCode::kPermissionDenied) {
    (void)RecordRefusal(caller, action, subject, result.error());
  }
  return result;
}

core::Result<void> ControlPlane::RecordRefusal(const Caller& caller, std::string_view action,
                                               std::string_view subject, const core::Error& error) {
  if (caller.token_id.empty()) return {};
  auto recorded = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    return Ledger(
        tx, caller, "access.refused", subject,
        {{"attempted", action}, {"reason", error.message}, {"token_id", caller.token_id}});
  });
  if (!recorded) {
    spdlog::error(
        "component=app event=refusal_not_recorded caller={} action={} subject={} "
        "error=\"{}\"",
        caller.name(), action, subject, recorded.error().message);
  }
  return recorded;
}

core::Result<bool> ControlPlane::BootstrapAdmin() {
  bool has_users = false;
  BACKOUT_CHECK(store_.Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto users, tx.List(store::ListQuery{.kind = kUserKind, .limit = 1}));
    has_users = !users.empty();
    return {};
  }));
  if (has_users) return false;

  const std::filesystem::path data_dir = settings()->config.data_dir;
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return core::MakeError(core::ErrorCode::kUnavailable, "could not create data_dir {}: {}",
                           data_dir.string(), error.message());
  }
  const std::filesystem::path token_path = data_dir / kAdminTokenFile;

  // The token file is written inside the transaction, before the commit, so a committed admin
  // always has its token on disk; a failed commit removes the file again.
  const Caller system = SystemCaller();
  auto written = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto users, tx.List(store::ListQuery{.kind = kUserKind, .limit = 1}));
    if (!users.empty()) {
      return core::MakeError(core::ErrorCode::kAlreadyExists,
                             "another server created the first user meanwhile");
    }
    core::User admin{.name = kAdminName, .roles = {core::Role::kAdmin}};
    BACKOUT_TRY(auto stored, Insert(tx, kUserKind, admin.name, "", admin));
    BACKOUT_TRY(IssuedToken token, StoreNewToken(tx, admin.name, system.name(), std::nullopt));
    BACKOUT_CHECK(Ledger(tx, system, "user.created", fmt::format("user/{}", admin.name),
                         {{"roles", {"admin"}},
                          {"services", nlohmann::json::array()},
                          {"token_id", token.token_id},
                          {"bootstrap", true}}));
    return WriteSecretFile(token_path, token.text + "\n");
  });
  if (!written) {
    std::filesystem::remove(token_path, error);
    if (written.error().code == core::ErrorCode::kAlreadyExists) return false;
    return std::unexpected(written.error());
  }
  spdlog::info("component=app event=admin_created user={} token_file={}", kAdminName,
               token_path.string());
  return true;
}

core::Result<void> ControlPlane::RecordPolicy(std::string_view loaded_by) {
  const auto current = settings();
  Caller actor = SystemCaller();
  actor.user.name = std::string(loaded_by);
  return store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    return Ledger(tx, actor, "policy.loaded", "policy",
                  {{"config_file", current->config.source_name},
                   {"config_sha256", current->config_sha256},
                   {"loaded_by", loaded_by},
                   {"policy", nlohmann::json(current->policy)},
                   {"provider_bindings", ProviderBindingsOf(current->config)}});
  });
}

core::Result<void> ControlPlane::AuthorizeReload(const Caller& caller) {
  const auto current = settings();
  return Read(caller, "config.reload", "policy",
              [&](store::Transaction&) { return CheckUserAdmin(caller.user, current->policy); });
}

core::Result<void> ControlPlane::Reload(std::shared_ptr<const Settings> settings,
                                        std::string_view loaded_by) {
  {
    std::lock_guard lock(settings_mutex_);
    settings_ = std::move(settings);
  }
  return RecordPolicy(loaded_by);
}

core::Result<Caller> ControlPlane::Authenticate(std::string_view token) const {
  const std::optional<std::string> token_id = TokenIdOf(token);
  if (!token_id) {
    return core::MakeError(core::ErrorCode::kUnauthenticated,
                           "the bearer token is not a Backout token; ask an admin for one");
  }
  const core::Time now = clock_.Now();
  Caller caller;
  auto read = store_.Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto object, tx.Get(kTokenKind, *token_id));
    if (!object) {
      return core::MakeError(core::ErrorCode::kUnauthenticated, "token {} is unknown", *token_id);
    }
    BACKOUT_TRY(TokenRecord record, TokenFromJson(object->body));
    if (!TokenMatches(token, record.sha256)) {
      return core::MakeError(core::ErrorCode::kUnauthenticated, "token {} is not valid", *token_id);
    }
    if (record.revoked_at) {
      return core::MakeError(core::ErrorCode::kUnauthenticated,
                             "token {} was revoked at {}; ask an admin for a new one", *token_id,
                             core::FormatTime(*record.revoked_at));
    }
    if (record.expires_at && *record.expires_at <= now) {
      return core::MakeError(core::ErrorCode::kUnauthenticated,
                             "token {} expired at {}; ask an admin for a new one", *token_id,
                             core::FormatTime(*record.expires_at));
    }
    BACKOUT_TRY(auto user, Load<core::User>(tx, kUserKind, record.user, "user"));
    if (!user.value.active) {
      return core::MakeError(core::ErrorCode::kUnauthenticated, "user {} is deactivated",
                             user.value.name);
    }
    caller = Caller{.user = std::move(user.value), .token_id = *token_id};
    return {};
  });
  if (!read) {
    if (read.error().code == core::ErrorCode::kNotFound) {
      return core::MakeError(core::ErrorCode::kUnauthenticated, "the token's user is unknown");
    }
    return std::unexpected(read.error());
  }
  return caller;
}

core::Result<CreatedUser> ControlPlane::CreateUser(const Caller& caller, const NewUser& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  if (request.roles.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "user {} needs at least one role",
                           request.name);
  }
  if (request.expires_at && *request.expires_at <= now) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "expires_at {} is not in the future",
                           core::FormatTime(*request.expires_at));
  }

  CreatedUser created;
  const std::string subject = fmt::format("user/{}", request.name);
  BACKOUT_CHECK(
      Write(caller, "user.create", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(CheckUserAdmin(caller.user, current->policy));
        core::User user{.name = request.name, .roles = request.roles, .services = request.services};
        BACKOUT_CHECK(core::CheckOnRoster(user, current->policy));
        BACKOUT_TRY(auto existing, tx.Get(kUserKind, user.name));
        if (existing) {
          return core::MakeError(core::ErrorCode::kAlreadyExists,
                                 "user {} already exists; revoke and reissue its tokens instead",
                                 user.name);
        }
        BACKOUT_TRY(auto stored, Insert(tx, kUserKind, user.name, "", user));
        BACKOUT_TRY(IssuedToken token,
                    StoreNewToken(tx, user.name, caller.name(), request.expires_at));
        nlohmann::json roles = nlohmann::json::array();
        for (core::Role role : user.roles) roles.push_back(core::RoleName(role));
        BACKOUT_CHECK(Ledger(tx, caller, "user.created", subject,
                             {{"roles", roles},
                              {"services", user.services},
                              {"token_id", token.token_id},
                              {"expires_at", OptionalTime(request.expires_at)}}));
        created = CreatedUser{.user = std::move(user),
                              .token = std::move(token.text),
                              .token_id = token.token_id,
                              .expires_at = request.expires_at};
        return {};
      }));
  spdlog::info("component=app event=user_created user={} token_id={} by={}", created.user.name,
               created.token_id, caller.name());
  return created;
}

core::Result<Page<core::User>> ControlPlane::ListUsers(const Caller& caller,
                                                       const ListOptions& options) {
  const auto current = settings();
  Page<core::User> page;
  BACKOUT_CHECK(
      Read(caller, "user.list", "user", [&](store::Transaction& tx) -> core::Result<void> {
        if (!caller.user.HasRole(core::Role::kAdmin) &&
            !caller.user.HasRole(core::Role::kAuditor)) {
          return core::MakeError(core::ErrorCode::kPermissionDenied,
                                 "listing users needs role admin or auditor; {} holds neither",
                                 caller.name());
        }
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        BACKOUT_TRY(auto objects,
                    tx.List(store::ListQuery{
                        .kind = kUserKind, .after_id = options.after, .limit = options.limit + 1}));
        for (const store::Object& object : objects) {
          if (static_cast<int>(page.items.size()) == options.limit) {
            page.next_after = page.items.back().name;
            break;
          }
          BACKOUT_TRY(core::User user, core::FromJson<core::User>(object.body));
          page.items.push_back(std::move(user));
        }
        return {};
      }));
  return page;
}

core::Result<RevokedToken> ControlPlane::RevokeToken(const Caller& caller,
                                                     std::string_view token_id) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  RevokedToken revoked{.token_id = std::string(token_id), .revoked_at = now};
  const std::string subject = fmt::format("token/{}", token_id);
  BACKOUT_CHECK(
      Write(caller, "token.revoke", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto object, tx.Get(kTokenKind, token_id));
        if (!object) {
          return core::MakeError(core::ErrorCode::kNotFound, "token {} not found", token_id);
        }
        BACKOUT_TRY(TokenRecord record, TokenFromJson(object->body));
        if (record.user != caller.name())
          BACKOUT_CHECK(CheckUserAdmin(caller.user, current->policy));
        if (record.revoked_at) {
          revoked.revoked_at = *record.revoked_at;
          return {};
        }
        record.revoked_at = now;
        record.revoked_by = caller.name();
        object->body = TokenJson(record);
        BACKOUT_CHECK(tx.Put(*object));
        return Ledger(tx, caller, "token.revoked", subject, {{"user", record.user}});
      }));
  return revoked;
}

}  // namespace backout::app
