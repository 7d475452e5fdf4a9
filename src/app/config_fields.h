#pragma once

// Field readers shared by the parts of the config loader (config.cc, config_kinds.cc). Not for
// use outside the loader.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "app/config.h"
#include "app/secret_ref.h"
#include "app/yaml_reader.h"
#include "core/error.h"

namespace backout::app::config_internal {

// State shared by the parse steps: the reader that keeps the first error, and the folder that
// relative paths resolve against.
struct ParseContext {
  YamlReader& reader;
  std::filesystem::path base_dir;
};

// Checks every value of the document at a secret field (kSecretFields in config_fields.cc) and
// fails on the first that is not a valid reference. Runs before any other check, so that a
// secret written inline is rejected before any other message could quote it.
void CheckSecretReferences(ParseContext& context, const YamlValue& root);

// Reads a secret reference. A relative file: path resolves against the context's folder.
std::optional<SecretRef> ReadSecret(ParseContext& context, const YamlValue& value);

// Reads a path and makes it absolute against the context's folder.
std::optional<std::filesystem::path> ReadPath(ParseContext& context, const YamlValue& value);

// Returns what is wrong with a service, user, check or environment name, or std::nullopt when
// it is valid.
std::optional<std::string> CheckName(const std::string& name);

// Parses `HOST:PORT`, with an IPv6 host in brackets.
core::Result<ListenAddress> ParseListenAddress(std::string_view text);

// Validates a store URL (sqlite:PATH, postgresql://…, postgres://…) and makes a relative SQLite
// path absolute against `base_dir`. The messages never quote a PostgreSQL URL, because it may
// contain a password.
core::Result<std::string> ParseDatabase(std::string_view url,
                                        const std::filesystem::path& base_dir);

// Reads the `http` block: request_timeout and idle_timeout, each from 100ms to 1h, and
// max_connections_per_client, 0 (no limit) or more.
std::optional<HttpConfig> ParseHttp(ParseContext& context, const YamlValue& value);

// ---- Reconciliation and notifications -------------------------------------------------------

// Reads the `notifications` block: webhooks with unique names, each URL http(s), each secret a
// reference, each event filter naming known events.
std::optional<NotificationsConfig> ParseNotifications(ParseContext& context,
                                                      const YamlValue& value);

// Reads a service's `reconcile_interval`: a duration of one second or more.
std::optional<core::Duration> ReadReconcileInterval(ParseContext& context, const YamlValue& value);

// ---- Post-incident reviews ------------------------------------------------------------------

// Reads the `review` block: `template`, a Mustache file that must exist and parse.
std::optional<ReviewConfig> ParseReview(ParseContext& context, const YamlValue& value);

// ---- The ledger ------------------------------------------------------------------------------

// Reads the `ledger` block: `checkpoint_interval`, 0 (every write) or a duration of at most 1h.
std::optional<LedgerConfig> ParseLedger(ParseContext& context, const YamlValue& value);

}  // namespace backout::app::config_internal
