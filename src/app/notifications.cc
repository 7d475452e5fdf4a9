// Notifications: storing a delivery per webhook in the event's transaction, signing, and listing.
#include "app/notifications.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/try.h"

namespace backout::app {
namespace {

using nlohmann::json;

json OptionalTime(const std::optional<core::Time>& time) {
  return time ? json(core::FormatTime(*time)) : json(nullptr);
}

core::Result<std::optional<core::Time>> ReadOptionalTime(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  BACKOUT_TRY(core::Time time, core::ParseTime(it->get<std::string>()));
  return time;
}

bool Admits(const WebhookConfig& webhook, std::string_view event) {
  return webhook.events.empty() || std::ranges::find(webhook.events, event) != webhook.events.end();
}

// The body a webhook receives. Slack-compatible endpoints get only the `text` field, the payload
// Slack's incoming webhooks accept.
std::string RenderBody(const WebhookConfig& webhook, const NotificationEvent& event,
                       const std::string& event_id, const std::string& delivery_id,
                       core::Time now) {
  if (webhook.slack) {
    return json{{"text", fmt::format("[backout] {}", event.summary)}}.dump();
  }
  return json{{"id", event_id},           {"delivery", delivery_id},
              {"event", event.event},     {"time", core::FormatTime(now)},
              {"service", event.service}, {"subject", event.subject},
              {"summary", event.summary}, {"data", event.data}}
      .dump();
}

}  // namespace

json ToJson(const Notification& notification) {
  return {{"id", notification.id},
          {"event_id", notification.event_id},
          {"event", notification.event},
          {"webhook", notification.webhook},
          {"subject", notification.subject},
          {"service", notification.service},
          {"body", notification.body},
          {"state", notification.state},
          {"attempts", notification.attempts},
          {"last_status", notification.last_status},
          {"last_error", notification.last_error},
          {"created_at", core::FormatTime(notification.created_at)},
          {"next_attempt_at", OptionalTime(notification.next_attempt_at)},
          {"delivered_at", OptionalTime(notification.delivered_at)},
          {"job_id", notification.job_id}};
}

core::Result<Notification> NotificationFromJson(const json& body) {
  try {
    Notification notification{.id = body.at("id").get<std::string>(),
                              .event_id = body.value("event_id", ""),
                              .event = body.at("event").get<std::string>(),
                              .webhook = body.at("webhook").get<std::string>(),
                              .subject = body.value("subject", ""),
                              .service = body.value("service", ""),
                              .body = body.at("body").get<std::string>(),
                              .state = body.at("state").get<std::string>(),
                              .attempts = body.value("attempts", 0),
                              .last_status = body.value("last_status", 0),
                              .last_error = body.value("last_error", ""),
                              .job_id = body.value("job_id", "")};
    BACKOUT_TRY(notification.created_at, core::ParseTime(body.at("created_at").get<std::string>()));
    BACKOUT_TRY(notification.next_attempt_at, ReadOptionalTime(body, "next_attempt_at"));
    BACKOUT_TRY(notification.delivered_at, ReadOptionalTime(body, "delivered_at"));
    return notification;
  } catch (const json::exception& error) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored notification cannot be read: {}",
                           error.what());
  }
}

core::Result<void> EnqueueNotification(store::Transaction& tx, const Config& config, core::Time now,
                                       const NotificationEvent& event) {
  const bool any = std::ranges::any_of(config.notifications.webhooks, [&](const WebhookConfig& w) {
    return Admits(w, event.event);
  });
  if (!any) return {};

  BACKOUT_TRY(int64_t event_number, tx.NextNumber("notification_event"));
  const std::string event_id = fmt::format("EVT-{}", event_number);
  for (const WebhookConfig& webhook : config.notifications.webhooks) {
    if (!Admits(webhook, event.event)) continue;
    BACKOUT_TRY(int64_t number, tx.NextNumber(kNotificationKind));
    Notification notification{.id = fmt::format("NTF-{}", number),
                              .event_id = event_id,
                              .event = event.event,
                              .webhook = webhook.name,
                              .subject = event.subject,
                              .service = event.service,
                              .state = kDeliveryPending,
                              .created_at = now,
                              .next_attempt_at = now};
    notification.body = RenderBody(webhook, event, event_id, notification.id, now);
    BACKOUT_TRY(int64_t job_id,
                tx.EnqueueJob(kNotificationJob, fmt::format("notification/{}", notification.id),
                              {{"notification_id", notification.id}}, now));
    notification.job_id = std::to_string(job_id);
    store::Object object{.kind = kNotificationKind,
                         .id = notification.id,
                         .service = notification.service,
                         .body = ToJson(notification)};
    BACKOUT_CHECK(tx.Put(object));
  }
  return {};
}

core::Result<void> ScheduleOverdueCheck(store::Transaction& tx, const core::ActionItem& item) {
  if (!item.due || item.status != core::ActionItemStatus::kOpen) return {};
  const core::Time end_of_due_day =
      std::chrono::time_point_cast<core::Duration>(*item.due + std::chrono::days(1));
  auto job = tx.EnqueueJob(kActionItemDueJob, fmt::format("action_item/{}", item.id),
                           {{"action_item_id", item.id}}, end_of_due_day);
  if (!job) return std::unexpected(job.error());
  return {};
}

std::string SignWebhook(std::string_view secret, std::string_view timestamp,
                        std::string_view body) {
  const std::string message = fmt::format("{}.{}", timestamp, body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex = "v1=";
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

core::Duration NotificationRetryDelay(const NotificationsConfig& config, int attempt) {
  core::Duration delay = config.retry_initial;
  for (int i = 1; i < attempt && delay < config.retry_max; ++i) delay *= 2;
  return std::min(delay, config.retry_max);
}

core::Result<Page<Notification>> ControlPlane::ListNotifications(const Caller& caller,
                                                                 bool failed_only,
                                                                 const ListOptions& options) {
  const auto current = settings();
  Page<Notification> page;
  BACKOUT_CHECK(Read(
      caller, "notification.list", "notification",
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        std::string after = options.after;
        // The state filter applies after reading, so keep reading until the page is full.
        while (true) {
          BACKOUT_TRY(auto objects, tx.List(store::ListQuery{.kind = kNotificationKind,
                                                             .after_id = after,
                                                             .limit = options.limit + 1}));
          for (const store::Object& object : objects) {
            BACKOUT_TRY(Notification notification, NotificationFromJson(object.body));
            if (failed_only && notification.state != kDeliveryFailed) continue;
            if (static_cast<int>(page.items.size()) == options.limit) {
              page.next_after = page.items.back().id;
              return {};
            }
            page.items.push_back(std::move(notification));
          }
          if (static_cast<int>(objects.size()) <= options.limit) return {};
          after = objects.back().id;
        }
      }));
  return page;
}

}  // namespace backout::app
