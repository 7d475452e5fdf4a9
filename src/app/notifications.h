#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "app/config.h"
#include "core/domain.h"
#include "core/error.h"
#include "core/time.h"
#include "store/store.h"

// Signed outbound webhooks. A use case calls EnqueueNotification inside its own transaction, so
// the notification commits or rolls back with the event it reports, and the delivery job sends it
// later with the key fixed at that commit. A crash before the commit loses the event and the
// notification together. After the commit, a crash only makes the job send the same body with the
// same key again.
namespace backout::app {

inline constexpr char kNotificationKind[] = "notification";
inline constexpr char kNotificationJob[] = "notification";

// Headers of every delivery. The signature is "v1=" and the lower-case hex HMAC-SHA256, keyed by
// the webhook's secret, of the timestamp header's value, a '.', and the body's bytes.
inline constexpr char kTimestampHeader[] = "Backout-Timestamp";  // Unix time in seconds
inline constexpr char kSignatureHeader[] = "Backout-Signature";
inline constexpr char kIdempotencyHeader[] = "Idempotency-Key";
inline constexpr char kEventHeader[] = "Backout-Event";

// One event for the webhooks.
struct NotificationEvent {
  std::string event;    // one of NotificationEvents()
  std::string subject;  // the ledger subject it concerns, such as "incident/INC-3"
  std::string service;  // empty when the event concerns no single service
  std::string summary;  // one line for people; the whole text of a Slack-style payload
  nlohmann::json data = nlohmann::json::object();
};

// Delivery states: pending (queued or waiting for a retry), delivered, failed (dead-lettered
// after the last attempt, kept for `backout notification list --failed`).
inline constexpr char kDeliveryPending[] = "pending";
inline constexpr char kDeliveryDelivered[] = "delivered";
inline constexpr char kDeliveryFailed[] = "failed";

// One delivery of one event to one webhook, stored as object kind "notification".
struct Notification {
  std::string id;        // "NTF-1"; also the Idempotency-Key header of every attempt
  std::string event_id;  // "EVT-1", shared by the deliveries of one event to several webhooks
  std::string event;
  std::string webhook;  // the endpoint's name; its URL is never stored here
  std::string subject;
  std::string service;
  std::string body;  // the exact bytes every attempt sends
  std::string state = kDeliveryPending;
  int attempts = 0;
  int last_status = 0;  // HTTP status of the latest attempt; 0 when no response arrived
  std::string last_error;
  core::Time created_at{};
  std::optional<core::Time> next_attempt_at;
  std::optional<core::Time> delivered_at;
  std::string job_id;
};

nlohmann::json ToJson(const Notification& notification);
core::Result<Notification> NotificationFromJson(const nlohmann::json& json);

// Stores one delivery per webhook of `config` whose event filter admits `event.event`, and
// enqueues a delivery job for each, all in `tx`. Does nothing when no webhook matches.
core::Result<void> EnqueueNotification(store::Transaction& tx, const Config& config, core::Time now,
                                       const NotificationEvent& event);

// Enqueues the job that sends "action_item.overdue" if `item` is still open when its due date
// has passed (at the end of that day, UTC), in `tx`.
core::Result<void> ScheduleOverdueCheck(store::Transaction& tx, const core::ActionItem& item);

// Returns the value of the signature header for `body` sent at `timestamp`.
std::string SignWebhook(std::string_view secret, std::string_view timestamp, std::string_view body);

// Returns the delay before attempt `attempt` + 1, after `attempt` failed attempts: retry_initial
// doubled for each earlier failure, at most retry_max.
core::Duration NotificationRetryDelay(const NotificationsConfig& config, int attempt);

}  // namespace backout::app
