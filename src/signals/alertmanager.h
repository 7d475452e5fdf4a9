#pragma once

// Alertmanager webhook payloads, version "4": the body Alertmanager's webhook_config POSTs to a
// receiver. Every alert is decoded on its own: the group's `status`, `commonLabels` and
// `groupLabels` summarize the message and never decide what one alert means.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/time.h"

namespace backout::signals {

enum class AlertStatus { kFiring, kResolved };
std::string_view AlertStatusName(AlertStatus status);  // "firing", "resolved"

struct Alert {
  AlertStatus status = AlertStatus::kFiring;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  core::Time starts_at{};
  std::optional<core::Time> ends_at;  // empty for Alertmanager's "0001-01-01T00:00:00Z"
  std::string generator_url;
  // Alertmanager's 16-hex fingerprint of the label set. Older senders leave it out, and then it
  // is computed from the labels (fingerprint_computed is true).
  std::string fingerprint;
  bool fingerprint_computed = false;
  // The alert's own value of the service label; empty when the alert lacks it.
  std::string service;

  // The identity that makes a repeated delivery (a retry, a second Alertmanager replica) the
  // same signal: fingerprint and start time, "56ce4798c45df6a4@2026-12-04T15:53:10.000000Z".
  std::string Identity() const;
  // The `severity` label, or "" when absent.
  std::string Severity() const;
};

// An alert that could not be decoded, with the reason; the other alerts of the message still
// count.
struct InvalidAlert {
  size_t index = 0;
  std::string reason;
};

struct WebhookPayload {
  std::string version;
  std::string group_key;
  std::string receiver;
  std::string status;  // the group's status: firing when any alert fires
  std::string external_url;
  // Alerts Alertmanager dropped because of the receiver's max_alerts. They are not sent later.
  int64_t truncated_alerts = 0;
  std::vector<Alert> alerts;
  std::vector<InvalidAlert> invalid_alerts;
};

// Parses a webhook body. `service_label` is the label that names the service on each alert.
// Fails with kInvalidArgument when the body is not a JSON object, when `version` is not "4" or
// when `alerts` is not a list; a single malformed alert goes to invalid_alerts instead.
core::Result<WebhookPayload> ParseAlertmanagerWebhook(std::string_view body,
                                                      std::string_view service_label);

// A 16-hex FNV-1a digest of the sorted label set, for alerts sent without a fingerprint. It is
// stable across deliveries but differs from Alertmanager's own fingerprint algorithm.
std::string LabelFingerprint(const std::map<std::string, std::string>& labels);

}  // namespace backout::signals
