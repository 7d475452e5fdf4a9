#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/time.h"

// Access reviews: who can decide and who can execute rollbacks of each service, from the live
// grants, compared with the roster in the config.
namespace backout::app {

// Attestations are stored as objects of this kind, numbered "AR-N".
inline constexpr char kAccessAttestationKind[] = "access_attestation";

// A stored user with the roles and services granted through the API, and its live tokens.
struct AccessGrant {
  std::string user;
  std::vector<std::string> roles;
  std::vector<std::string> services;
  std::vector<std::string> tokens;  // ids of tokens neither revoked nor expired
  bool on_roster = false;
};

struct ServiceAccess {
  std::string service;
  std::string provider;
  std::vector<std::string> deciders;         // granted users who may decide go/no-go
  std::vector<std::string> executors;        // granted users who may execute its rollback
  std::vector<std::string> roster_deciders;  // the same as the roster in the config lists them
  std::vector<std::string> roster_executors;
  // People who could roll the service back with the tool directly, bypassing Backout. This is a
  // documented limit, because Backout cannot read or restrict the tool's own permissions.
  std::string bypass;
};

// A difference between the grants and the roster. `kind` is "grant_not_on_roster" or
// "roster_without_grant".
struct AccessFinding {
  std::string kind;
  std::string user;
  std::string message;
};

struct AccessAttestation {
  std::string id;  // "AR-N"
  std::string attested_by;
  core::Time attested_at{};
  std::string sha256;  // of the canonical JSON of the review's `list`
  int findings = 0;
};

struct AccessReviewReport {
  core::Time generated_at{};
  std::vector<AccessGrant> grants;
  std::vector<ServiceAccess> services;
  std::vector<AccessFinding> findings;
  // SHA-256 hex of the canonical JSON (sorted keys, no whitespace) of ListJson(report): the
  // grants, services and findings, without the time.
  std::string sha256;
  std::optional<AccessAttestation> last_attestation;
};

// The part of the report an attestation covers.
nlohmann::json ListJson(const AccessReviewReport& report);
nlohmann::json ToJson(const AccessReviewReport& report);
nlohmann::json ToJson(const AccessAttestation& attestation);

}  // namespace backout::app
