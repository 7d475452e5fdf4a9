// The notification delivery job: one signed POST per attempt, retried with backoff by the job
// queue, dead-lettered after the last attempt.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "app/job_runner.h"
#include "app/notifications.h"
#include "app/records.h"
#include "app/try.h"
#include "http/client.h"

namespace backout::app {
namespace {

// The result of one delivery attempt.
struct AttemptResult {
  bool delivered = false;
  int status = 0;
  std::string error;
};

const WebhookConfig* FindWebhook(const Config& config, std::string_view name) {
  auto found = std::ranges::find(config.notifications.webhooks, name, &WebhookConfig::name);
  return found == config.notifications.webhooks.end() ? nullptr : &*found;
}

// The URL's path and query, which for chat webhooks carry the token, so the redactor hides them
// as well as the whole URL.
std::string UrlTail(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t slash = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  if (slash == std::string_view::npos || url.size() - slash <= 1) return "";
  return std::string(url.substr(slash));
}

AttemptResult Send(const WebhookConfig& webhook, const Notification& notification,
                   const core::Clock& clock) {
  auto secret = webhook.secret.Resolve();
  if (!secret) return AttemptResult{.error = secret.error().message};

  http::ClientOptions options;
  options.connect_timeout = std::chrono::seconds(5);
  options.total_timeout = std::chrono::seconds(15);
  // The job queue retries with its own backoff, so the client makes one attempt per run.
  options.retry.max_attempts = 1;
  options.user_agent = "backout-webhook";
  options.name = "notifications";
  options.redaction.secret_values = {webhook.url, UrlTail(webhook.url), *secret};
  options.redaction.headers = {kSignatureHeader};
  options.now = [&clock] { return http::TimePoint(clock.Now()); };
  auto client = http::Client::Create(std::move(options));
  if (!client) return AttemptResult{.error = client.error().message};

  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count());
  http::Request request{
      .method = http::Method::kPost, .url = webhook.url, .body = notification.body};
  request.headers.Set("Content-Type", "application/json");
  request.headers.Set(kTimestampHeader, timestamp);
  request.headers.Set(kSignatureHeader, SignWebhook(*secret, timestamp, notification.body));
  request.headers.Set(kIdempotencyHeader, notification.id);
  request.headers.Set(kEventHeader, notification.event);
  // Receivers deduplicate by the idempotency key, so repeating the POST is safe.
  request.idempotent = true;

  auto response = (*client)->Send(request);
  if (!response) return AttemptResult{.error = response.error().message};
  if (response->status >= 200 && response->status < 300) {
    return AttemptResult{.delivered = true, .status = response->status};
  }
  return AttemptResult{.status = response->status,
                       .error = fmt::format("the receiver answered HTTP {}", response->status)};
}

}  // namespace

void JobRunner::RunNotification(const store::JobLease& lease) {
  const int64_t job_id = lease.job.id;
  const int64_t token = lease.fencing_token;
  const std::string id = lease.job.payload.value("notification_id", "");
  const auto settings = plane_.settings();
  const core::Clock& clock = plane_.clock();

  // Step 1: the delivery as stored. One already settled only ends its job.
  std::optional<Notification> notification;
  auto read = plane_.store().Read([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(auto object, tx.Get(kNotificationKind, id));
    if (!object) return {};
    BACKOUT_TRY(notification, NotificationFromJson(object->body));
    return {};
  });
  if (!read || !notification || notification->state != kDeliveryPending) {
    auto ended = plane_.store().Write([&](store::Transaction& tx) -> core::Result<void> {
      if (!read) return tx.FailJob(job_id, token, read.error().message, std::nullopt);
      return tx.CompleteJob(job_id, token);
    });
    if (!read || !notification) {
      spdlog::error("component=notifications job={} notification={} event=unreadable error=\"{}\"",
                    job_id, id, read ? "not found" : read.error().message);
    }
    (void)ended;
    return;
  }

  // Step 2: one attempt, outside any transaction.
  const WebhookConfig* webhook = FindWebhook(settings->config, notification->webhook);
  AttemptResult attempt;
  bool final_failure = false;
  if (webhook == nullptr) {
    attempt.error =
        fmt::format("webhook {} is no longer in the configuration", notification->webhook);
    final_failure = true;
  } else {
    attempt = Send(*webhook, *notification, clock);
  }

  // Step 3: the result, under the lease's fencing token.
  const core::Time now = clock.Now();
  const NotificationsConfig& config = settings->config.notifications;
  notification->attempts += 1;
  notification->last_status = attempt.status;
  notification->last_error = attempt.error;
  std::optional<core::Time> retry_at;
  if (attempt.delivered) {
    notification->state = kDeliveryDelivered;
    notification->delivered_at = now;
    notification->next_attempt_at.reset();
  } else if (final_failure || notification->attempts >= config.max_attempts) {
    notification->state = kDeliveryFailed;
    notification->next_attempt_at.reset();
  } else {
    retry_at = now + NotificationRetryDelay(config, notification->attempts);
    notification->next_attempt_at = retry_at;
  }
  auto written = plane_.store().Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_CHECK(tx.CheckFence(job_id, token));
    BACKOUT_TRY(auto object, tx.Get(kNotificationKind, id));
    if (!object)
      return core::MakeError(core::ErrorCode::kNotFound,
                             "notification {} was deleted during its delivery", id);
    object->body = ToJson(*notification);
    BACKOUT_CHECK(tx.Put(*object));
    if (notification->state == kDeliveryFailed) {
      BACKOUT_CHECK(Ledger(tx, SystemCaller(), "notification.dead_lettered",
                           fmt::format("notification/{}", id),
                           {{"event", notification->event},
                            {"webhook", notification->webhook},
                            {"attempts", notification->attempts},
                            {"last_status", notification->last_status},
                            {"last_error", notification->last_error}}));
    }
    if (attempt.delivered) return tx.CompleteJob(job_id, token);
    return tx.FailJob(job_id, token, attempt.error, retry_at);
  });

  if (!written) {
    spdlog::error("component=notifications job={} notification={} event=commit_failed error=\"{}\"",
                  job_id, id, written.error().message);
  } else if (attempt.delivered) {
    spdlog::info(
        "component=notifications job={} notification={} webhook={} event_name={} event=delivered "
        "attempt={} status={}",
        job_id, id, notification->webhook, notification->event, notification->attempts,
        attempt.status);
  } else if (retry_at) {
    spdlog::warn(
        "component=notifications job={} notification={} webhook={} event=retry_later attempt={} "
        "retry_at={} error=\"{}\"",
        job_id, id, notification->webhook, notification->attempts, core::FormatTime(*retry_at),
        attempt.error);
  } else {
    spdlog::error(
        "component=notifications job={} notification={} webhook={} event=dead_lettered "
        "attempts={} error=\"{}\"",
        job_id, id, notification->webhook, notification->attempts, attempt.error);
  }
}

void JobRunner::RunActionItemDue(const store::JobLease& lease) {
  const int64_t job_id = lease.job.id;
  const int64_t token = lease.fencing_token;
  const std::string item_id = lease.job.payload.value("action_item_id", "");
  const auto settings = plane_.settings();
  const core::Time now = plane_.clock().Now();

  // The notification commits with the end of this job, so it is sent once whatever restarts.
  bool overdue = false;
  auto written = plane_.store().Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_CHECK(tx.CheckFence(job_id, token));
    BACKOUT_TRY(auto index, tx.Get(kActionItemKind, item_id));
    if (!index) return tx.CompleteJob(job_id, token);
    BACKOUT_TRY(auto incident, LoadIncident(tx, index->body.value("incident_id", "")));
    for (const core::ActionItem& item : incident.value.action_items) {
      if (item.id != item_id || item.status != core::ActionItemStatus::kOpen || !item.due) continue;
      overdue = true;
      BACKOUT_CHECK(EnqueueNotification(
          tx, settings->config, now,
          NotificationEvent{
              .event = "action_item.overdue",
              .subject = fmt::format("action_item/{}", item.id),
              .service = incident.value.service,
              .summary = fmt::format("action item {} of {} is overdue: {} (owner {}, due {})",
                                     item.id, incident.value.id, item.title, item.owner,
                                     core::FormatDate(*item.due)),
              .data = nlohmann::json(item)}));
    }
    return tx.CompleteJob(job_id, token);
  });
  if (!written) {
    spdlog::error(
        "component=notifications job={} action_item={} event=overdue_check_failed "
        "error=\"{}\"",
        job_id, item_id, written.error().message);
  } else if (overdue) {
    spdlog::info("component=notifications job={} action_item={} event=overdue", job_id, item_id);
  }
}

}  // namespace backout::app
