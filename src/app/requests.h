#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/domain.h"
#include "core/time.h"

// Inputs and outputs of the use cases in control_plane.h, already checked for shape by the
// caller (the HTTP layer validates JSON against each route's schema). The use cases check
// everything that needs state or policy.
namespace backout::app {

struct ListOptions {
  int limit = 100;    // 1 to 1000
  std::string after;  // keyset pagination: ids after this one
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_after;  // pass as `after` for the next page; empty on the last page
};

struct NewUser {
  std::string name;
  std::vector<core::Role> roles;
  std::vector<std::string> services;
  std::optional<core::Time> expires_at;  // the token's expiry; none: valid until revoked
};

struct CreatedUser {
  core::User user;
  std::string token;  // shown once
  std::string token_id;
  std::optional<core::Time> expires_at;
};

struct RevokedToken {
  std::string token_id;
  core::Time revoked_at;
};

struct NewChange {
  std::string service;
  std::string environment;  // empty: the service's environment
  std::string version;
  std::string previous_version;
  std::string external_ticket;
  std::string approver;
  std::string deployer;
  std::optional<core::Time> time;  // empty: now
  std::vector<core::Migration> migrations;
  std::string risk;
};

struct ChangeVerification {
  bool passed = false;
  std::string details;
};

struct NewIncident {
  std::string service;
  core::Severity severity = core::Severity::kSev3;
  std::string title;
  std::optional<std::string> suspected_change;
  std::string external_ticket;
};

struct IncidentFilter {
  std::optional<std::string> service;
  std::optional<core::IncidentState> state;
};

struct AssessRequest {
  std::optional<std::string> target_version;  // empty: chosen by the target rule
};

struct DecisionRequest {
  core::DecisionKind kind = core::DecisionKind::kGo;
  std::string reason;
  std::string approved_digest;  // empty: the current assessment's digest
  std::string override_reason;
  bool retroactive = false;
};

struct RollbackRequest {
  bool emergency = false;
  std::string reason;
};

struct AcceptedJob {
  std::string job_id;
  core::Incident incident;
};

struct ConfirmRequest {
  bool happened = false;
  std::string reason;
};

struct NewAttachment {
  std::string name;
  std::string content_base64;  // standard base64 with padding
};

struct DocumentRequest {
  std::string root_cause;
  std::vector<std::string> contributing_factors;
  std::vector<NewAttachment> attachments;
};

struct NewActionItem {
  std::string title;
  std::string owner;
  std::optional<core::Date> due;
  bool no_action = false;  // an explicit "no action items", with `reason`
  std::string reason;
};

struct ActionItemCompletion {
  bool not_doing = false;
  std::string evidence;
  std::string reason;
};

// A service's deploy freeze, which CI reads before deploying.
struct Freeze {
  std::string service;
  bool frozen = false;
  std::string reason;
  std::optional<core::Time> since;
  std::string incident;
  std::string set_by;
  std::string lifted_by;
  std::optional<core::Time> lifted_at;
  std::string lift_reason;
};

void to_json(nlohmann::json& json, const Freeze& freeze);
void from_json(const nlohmann::json& json, Freeze& freeze);

struct ServiceSummary {
  std::string name;
  std::string environment;
  std::string provider_kind;
  bool frozen = false;
};

struct ServiceDetail {
  nlohmann::json service;     // the service's configuration, secret references only
  nlohmann::json live_state;  // the provider's live state, or {"error": "..."}
  Freeze freeze;
};

struct JobView {
  std::string id;
  std::string kind;
  std::string state;  // queued, leased, succeeded, failed
  int attempts = 0;
  std::string subject;
  std::string outcome;  // the rollback outcome or validation finding when finished
  std::string message;
  nlohmann::json progress;  // the step reached and its details
};

// ---- Evidence and audit --------------------------------------------------------------------

struct AuditRequest {
  std::optional<core::Time> at;    // evaluate as of this time; empty: now
  std::optional<core::Time> from;  // only rollbacks requested at or after this time
  std::optional<core::Time> to;    // only rollbacks requested before this time
};

}  // namespace backout::app
