#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace backout::emulators::launchdarkly {

using Time = std::chrono::sys_time<std::chrono::milliseconds>;

// An error as the LaunchDarkly REST API sends it: the HTTP status and a body
// {"code": ..., "message": ...}. `retry_after_seconds` becomes a Retry-After header when set.
struct ApiError {
  ApiError() = default;
  ApiError(int status, std::string code, std::string message,
           std::optional<int> retry_after_seconds = std::nullopt)
      : status(status),
        code(std::move(code)),
        message(std::move(message)),
        retry_after_seconds(retry_after_seconds) {}

  int status = 400;
  std::string code;
  std::string message;
  std::optional<int> retry_after_seconds;
};

template <typename T>
using ApiResult = std::expected<T, ApiError>;

// The access token that made a request, as the audit log names it.
struct Caller {
  std::string token_id;
  std::string token_name;
  std::string token_ending;  // the token's last four characters, as LaunchDarkly shows them
  bool service_token = false;
  bool can_write = true;
  nlohmann::json member;  // {_id, email, firstName, lastName}, or null for a service token
};

// The state of one emulated LaunchDarkly account: projects with environments, flags in the
// representation GET /api/v2/flags/{project}/{flag} returns, access tokens and the audit log.
// Not thread-safe: the Emulator serializes calls.
class Model {
 public:
  // Builds the account from a state document (README.md describes it).
  static std::expected<Model, std::string> FromJson(const nlohmann::json& state, Time now);

  // The caller an Authorization header value names, or nothing when no token matches.
  std::optional<Caller> FindCaller(const std::string& token) const;

  // GET /api/v2/flags/{project}/{flag}[?env=KEY]: the flag with every environment, or only `env`.
  ApiResult<nlohmann::json> GetFlag(const std::string& project, const std::string& key,
                                    const std::string& env) const;
  // GET /api/v2/flags/{project}/{env}/{flag}/dependent-flags: the flags that name `key` as a
  // prerequisite in `env`.
  ApiResult<nlohmann::json> DependentFlags(const std::string& project, const std::string& env,
                                           const std::string& key) const;
  // PATCH /api/v2/flags/{project}/{flag}: a semantic patch when `semantic` (the Content-Type
  // carries domain-model=launchdarkly.semanticpatch), else a JSON patch, bare or wrapped as
  // {"comment", "patch"}. Appends one audit log entry per changed environment.
  ApiResult<nlohmann::json> PatchFlag(const std::string& project, const std::string& key,
                                      const nlohmann::json& body, bool semantic,
                                      bool ignore_conflicts, const Caller& caller, Time now);
  // GET /api/v2/auditlog with before, after (epoch milliseconds), q, limit and spec.
  ApiResult<nlohmann::json> ListAuditLog(const std::map<std::string, std::string>& query) const;
  // GET /api/v2/auditlog/{id}: the entry with its delta and the flag before and after.
  ApiResult<nlohmann::json> GetAuditEntry(const std::string& id) const;

  // Sets whether changes to flags in `project`/`environment` need an approval request.
  std::expected<void, std::string> SetApprovalRequired(const std::string& project,
                                                       const std::string& environment,
                                                       bool required);
  // Marks `project`/`environment` of flag `key` as having a pending scheduled change that a
  // patch conflicts with unless it passes ignoreConflicts=true.
  std::expected<void, std::string> SetPendingChange(const std::string& project,
                                                    const std::string& key,
                                                    const std::string& environment, bool pending);

  // Every flag and the whole audit log (GET /_emulator/state).
  nlohmann::json Dump() const;

 private:
  struct Environment {
    std::string key;
    std::string name;
    bool approval_required = false;
  };
  struct Project {
    std::string key;
    std::vector<Environment> environments;
  };
  struct Token {
    std::string value;
    Caller caller;
  };

  const Project* FindProject(const std::string& key) const;
  nlohmann::json* FindFlag(const std::string& project, const std::string& key);
  const nlohmann::json* FindFlag(const std::string& project, const std::string& key) const;
  std::string NextId();

  // Applies semantic patch instructions to `flag` and returns the environment they target.
  ApiResult<std::string> ApplySemanticPatch(nlohmann::json& flag, const nlohmann::json& body);
  // Records one audit log entry for each environment whose targeting changed.
  void RecordChanges(const std::string& project, const nlohmann::json& before,
                     const nlohmann::json& after, const std::string& comment, const Caller& caller,
                     Time now);

  std::string account_id_ = "5f0c0a0b0c0d0e0f10111213";
  std::vector<Project> projects_;
  std::map<std::string, std::map<std::string, nlohmann::json>> flags_;  // project → key → flag
  std::vector<Token> tokens_;
  std::vector<nlohmann::json> audit_log_;  // oldest first, full entries
  // Environments with a pending scheduled change, as "project/flag/environment".
  std::vector<std::string> pending_changes_;
  uint64_t next_id_ = 1;
};

}  // namespace backout::emulators::launchdarkly
