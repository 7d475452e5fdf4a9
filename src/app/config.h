#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/secret_ref.h"
#include "core/error.h"
#include "core/time.h"

namespace backout::app {

// The server's address, from `listen: HOST:PORT` (IPv6 hosts in brackets: [::1]:8470).
struct ListenAddress {
  std::string host = "127.0.0.1";  // without brackets
  uint16_t port = 8470;            // 0 lets the system pick a free port

  // Returns HOST:PORT, with an IPv6 host in brackets.
  std::string ToString() const;
};

// TLS for the server, from the `tls` block. Both are PEM, read when the server starts.
struct TlsConfig {
  SecretRef certificate;
  SecretRef private_key;
};

// The `metrics` block. Without a token, /metrics is public.
struct MetricsConfig {
  std::optional<SecretRef> token;
};

// The `http` block: limits that keep slow or idle clients from holding the server's request
// threads. Read at start only.
struct HttpConfig {
  // Maximum time a client may take to send one request (line, headers and body), counted from
  // its first byte. After it the server responds 408 and closes the connection.
  core::Duration request_timeout = std::chrono::seconds(10);
  // Maximum time an open connection may wait for its first or next request.
  core::Duration idle_timeout = std::chrono::seconds(5);
  // Maximum connections one client address may have open at once. 0 turns the limit off.
  int64_t max_connections_per_client = 32;

  bool operator==(const HttpConfig&) const = default;
};

// Requirements for closing an incident, from `policy.closure`. All are on by default.
struct ClosureRequirements {
  bool root_cause = true;
  // A `recovered` validation, or a documented no-go decision.
  bool recovered_or_no_go = true;
  // A stored review document.
  bool review = true;
  // At least one action item with owner and due date, or an explicit "no action" with a reason.
  bool action_items = true;
  // Every break-glass rollback approved afterwards by an engineering lead other than its executor.
  bool retroactive_approval = true;
};

// The `policy` block, with the defaults that apply to each absent key.
struct PolicyConfig {
  // Whoever approved a rollback may not execute it.
  bool separation_of_duties = true;
  // Roles whose holders decide go or no-go.
  std::vector<std::string> decider_roles = {"engineering-lead"};
  // Roles whose holders execute rollbacks on the services they are granted.
  std::vector<std::string> executor_roles = {"devops-engineer"};
  // Time an engineering lead other than the executor has to approve a break-glass rollback,
  // written in the file as a duration that is a whole number of hours, such as 24h or 1440m.
  std::chrono::hours break_glass_approval_window{24};
  ClosureRequirements closure;
};

// One entry of the `users` roster: the people who may be granted roles through the API.
struct UserConfig {
  std::string name;
  std::vector<std::string> roles;     // each one of KnownRoles(), at least one
  std::vector<std::string> services;  // services the entry names, possibly none
};

// A service's provider binding. `kind` selects the provider implementation and `settings` holds
// the block's other keys, checked by the loader against that kind's schema. Settings keep the
// types the kind defines: lists of strings as JSON arrays, booleans as booleans. Durations stay
// as written (parse them with core::ParseDuration), and secret references are written back by
// SecretRef::ToString, with file paths made absolute.
//
// Kind `command` (an approved runbook): run [required list: absolute executable path, then
// arguments]; status, history and readiness [optional lists, same form]; timeout, check_timeout
// and kill_grace [optional durations]; working_dir and output_dir [optional absolute folders];
// env [optional mapping of variable name to secret reference, no name starting with BACKOUT_].
//
// Kind `releases` (a `current` link switched between release folders): root [required absolute
// folder]; marker [optional file name]; restart and health [optional lists, as for `run`];
// restart_timeout and health_timeout [optional durations]; health_url [optional http(s) URL].
//
// Kind `git` (a revert pushed to a GitOps repository): repository [required URL or absolute
// path, no password in it]; branch; path [required path inside the repository]; exactly one of
// version_pattern [regular expression with one group] and version_key [dotted YAML key];
// work_dir [required absolute folder]; author_name, author_email; suspend_automation [optional
// list of paths inside the repository]; push_attempts [1 to 10]; verify_for [duration, 0s
// allowed] and verify_interval; credentials [optional mapping of username, password, ssh_key
// or ssh_passphrase to a secret reference; the provider receives each resolved value under its
// role]; health, health_url, health_timeout as for `releases`; controller_url [optional http(s)
// URL] and controller_revision_pointer [optional JSON pointer, needs controller_url].
//
// The providers module gives the defaults.
//
// Kind `kubernetes` (a Deployment rolled back as `kubectl rollout undo` does): kubeconfig
// [required path, made absolute]; deployment [required]; context, namespace and impersonate
// [optional strings]; readiness_timeout, poll_interval and request_timeout [optional durations];
// soak and gitops_grace [optional durations, zero allowed]; restart_limit [optional whole number
// from 1 to 1000]; gitops [optional: refuse or allow].
//
// Kind `codedeploy` (AWS CodeDeploy): application, deployment_group and region [required
// strings]; endpoint [optional http(s) URL]; credentials [optional mapping of access_key_id,
// secret_access_key and session_token to secret references], or profile [optional string] with
// credentials_file [optional path]; file_exists_behavior [DISALLOW, OVERWRITE or RETAIN];
// ignore_application_stop_failures [boolean]; deployment_config_name [string]; timeout,
// poll_interval, max_poll_interval and request_timeout [durations].
//
// Kind `launchdarkly` (a LaunchDarkly flag in one environment): project, environment and flag
// [required strings]; credentials [required mapping with api_token, a secret reference];
// base_url [optional http(s) URL]; action [turn_off or rollout_to_zero]; new_variation,
// safe_variation and sdk_fallback [strings: a variation's index, name or value, and the code
// fallback as JSON text]; patch_format [semantic or json_patch]; ignore_conflicts [boolean];
// api_version [string]; propagation_grace [duration, 0s allowed]; request_timeout, timeout and
// max_retry_wait [durations]. rollout_to_zero needs new_variation.
//
// Kind `unleash` (a feature flag turned off through Unleash's Admin API): url [required http(s)
// URL]; flag and environment [required strings]; project [optional string]; credentials
// [required mapping of api_token and sdk_token to secret references]; rollback [off, on or
// rollout-0]; audit_tag [boolean]; audit_tag_type and sdk_user_id [strings]; sdk_evaluation
// [optional list, as for `run`]; sdk_timeout and request_timeout [durations].
struct ProviderConfig {
  std::string kind;
  nlohmann::json settings = nlohmann::json::object();
};

// One validation check of a service, with the same split as ProviderConfig.
//
// Kind `command`: run, timeout and env, as for the command provider.
//
// Kinds `http`, `prometheus` and `manual` are run by the checks module, which validates their
// settings with the same rules (checks::ValidateSettings). `http`: steps [required list, stored
// as JSON with every scalar a string], timeout, within [zero allowed] and interval. `prometheus`:
// url and query [required], below or above [a number, exactly one], for, within, step,
// interval, evidence_before, timeout [durations] and bearer_token [secret reference]. `manual`:
// instructions, confirmers [list of user names], wait [zero allowed] and interval.
// docs/validation.md gives every key's default.
struct CheckConfig {
  std::string name;
  std::string kind;
  nlohmann::json settings = nlohmann::json::object();
};

// ---- Reconciliation and notifications -------------------------------------------------------

// How often a service's history is reconciled when its entry gives no `reconcile_interval`.
inline constexpr core::Duration kDefaultReconcileInterval = std::chrono::minutes(5);

// One endpoint of `notifications.webhooks`. Each delivery is a POST of a JSON body signed with
// HMAC-SHA256 under `secret`; docs/notifications.md gives the headers and how to verify them.
struct WebhookConfig {
  std::string name;  // unique among the webhooks; deliveries and logs name the endpoint by it
  // http:// or https:// URL. It may itself carry a token (Slack's do), so it is never logged or
  // stored with a delivery.
  std::string url;
  SecretRef secret;
  std::vector<std::string> events;  // event names from NotificationEvents(); empty: every event
  bool slack = false;               // send {"text": "…"} instead of the event's JSON
};

// The `notifications` block.
struct NotificationsConfig {
  std::vector<WebhookConfig> webhooks;
  // Delivery attempts per notification before it is dead-lettered, first attempt included.
  int max_attempts = 8;
  // Delay before the second attempt; each later delay doubles, up to retry_max.
  core::Duration retry_initial = std::chrono::seconds(10);
  core::Duration retry_max = std::chrono::minutes(10);
};

// The event names a webhook's `events` filter may list.
std::span<const std::string_view> NotificationEvents();

// ---- Detection: signals and per-service detection rules ------------------------------------

// The `signals.alertmanager` block: the Alertmanager webhook receiver. Without it the receiver
// route returns 404.
struct AlertmanagerReceiverConfig {
  // Compared with the request's `Authorization: Bearer` header; Alertmanager's http_config
  // sends it. At least one of bearer_token and hmac_secret is required.
  std::optional<SecretRef> bearer_token;
  // For senders that sign bodies: `X-Backout-Signature: sha256=HEX`, HMAC-SHA256 of the body.
  std::optional<SecretRef> hmac_secret;
  // The alert label that names the service.
  std::string service_label = "service";
  // A larger body gets 413 and is counted.
  int64_t max_body_bytes = int64_t{10} * 1024 * 1024;
};

// The `signals.prometheus` block: where detection rules are evaluated.
struct PrometheusConfig {
  std::string url;  // http(s)://HOST:PORT of the Prometheus server
  std::chrono::milliseconds timeout{10'000};
};

// The `signals` block.
struct SignalsConfig {
  std::optional<AlertmanagerReceiverConfig> alertmanager;
  std::optional<PrometheusConfig> prometheus;
  // How often the rules and probes of services with a change in its watch window run.
  std::chrono::milliseconds evaluation_interval{15'000};
};

// One PromQL condition of a service: firing while the query returns a sample.
struct DetectionRuleConfig {
  std::string name;
  std::string query;
  std::string severity = "warning";  // the signal's severity, matched by automatic_rollback
};

// One HTTP probe of a service.
struct ProbeConfig {
  std::string name;
  std::string url;
  std::string method = "GET";  // GET, HEAD or POST
  int64_t expected_status = 200;
  std::chrono::milliseconds timeout{5'000};
  std::string severity = "warning";
};

// A service's `detection` block. Automatic rollback is off unless `automatic_rollback.enabled`.
struct DetectionConfig {
  // Signals are correlated with changes this recent, and rules and probes run this long after
  // each change.
  std::chrono::milliseconds watch_window{30 * 60 * 1000};
  std::vector<DetectionRuleConfig> rules;
  std::vector<ProbeConfig> probes;
  bool automatic_rollback = false;
  // The signal severities (the alert's `severity` label, a rule's or probe's severity) at which
  // an attributed signal rolls back without a person's decision.
  std::vector<std::string> automatic_severities;
};

// One entry of `services`.
struct ServiceConfig {
  std::string name;
  std::string environment = "production";
  std::string owner;  // empty when not given
  std::optional<int64_t> tier;
  bool customer_facing = false;
  // Services this one depends on, each defined in the same file, with no cycles.
  std::vector<std::string> depends_on;
  ProviderConfig provider;
  std::vector<CheckConfig> checks;
  // How often the reconciliation job reads the provider's history (`reconcile_interval`).
  core::Duration reconcile_interval = kDefaultReconcileInterval;
  DetectionConfig detection;
};

// ---- Post-incident reviews (the `review` block) ----------------------------------------------

struct ReviewConfig {
  std::filesystem::path template_path;  // `review.template`; empty: the built-in template
  std::string template_text;            // the file's contents, read and checked at load
};

// ---- The ledger (the `ledger` block) ------------------------------------------------------------

inline constexpr core::Duration kDefaultCheckpointInterval = std::chrono::seconds(1);

struct LedgerConfig {
  // `ledger.checkpoint_interval`: the longest a committed entry waits for a signed checkpoint
  // while the server runs. Zero signs one in every write transaction.
  core::Duration checkpoint_interval = kDefaultCheckpointInterval;
};

// The server's configuration: one YAML file, validated when loaded.
//
// Relative paths in the file (data_dir, a sqlite: database, file: secret references) resolve
// against the folder that contains the file. Defaults: listen 127.0.0.1:8470, data_dir
// `backout-data` in the config file's folder, database sqlite:<data_dir>/backout.db. Secrets
// are checked as references at load but read only when used (SecretRef::Resolve), so a config
// can be validated on a machine that does not hold them.
struct Config {
  ListenAddress listen;
  // A store URL for store::OpenStore: sqlite:/absolute/path or postgresql://…, the latter
  // without a password (libpq reads it from PGPASSWORD or PGPASSFILE).
  std::string database;
  std::filesystem::path data_dir;  // absolute
  std::optional<TlsConfig> tls;
  MetricsConfig metrics;
  HttpConfig http;
  PolicyConfig policy;
  std::vector<UserConfig> users;
  std::vector<ServiceConfig> services;
  NotificationsConfig notifications;
  SignalsConfig signals;
  ReviewConfig review;
  LedgerConfig ledger;

  // The name that error messages use for the file: its path as given to Load.
  std::string source_name;
  // The file's bytes exactly as read, for recording its digest with the policy.
  std::string source_text;
  // Problems that do not stop the load, each `FILE:LINE: FIELD: message`, such as a service
  // that no validation can find recovered. The server logs them at start and on every reload,
  // and `backout config check` prints them.
  std::vector<std::string> warnings;

  // Reads and validates the file at `path`. Fails on the first problem found, with a message
  // `FILE:LINE: FIELD: what is wrong`, such as
  // `backout.yaml:7: services[0].provider.timeout: invalid duration '5x': …`.
  static core::Result<Config> Load(const std::filesystem::path& path);

  // Validates `text` as Load does. `display_name` names the file in messages, and `base_dir`
  // is the folder relative paths resolve against (empty: the current folder).
  static core::Result<Config> Parse(std::string_view text, std::string_view display_name,
                                    const std::filesystem::path& base_dir = {});

  // Returns the service named `name`, or nullptr.
  const ServiceConfig* FindService(std::string_view name) const;
};

// The roles a user or a policy may name: admin, engineering-lead, devops-engineer, auditor,
// viewer and ci.
std::span<const std::string_view> KnownRoles();

}  // namespace backout::app
