#include "server/signal_routes.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "core/logfmt.h"
#include "server/api_json.h"
#include "server/errors.h"
#include "server/log_throttle.h"
#include "server/schema.h"
#include "signals/alertmanager.h"

namespace backout::server {
namespace {

using nlohmann::json;

// How often the log may name one address whose webhook deliveries were rejected.
constexpr core::Duration kRejectedLogInterval = std::chrono::seconds(60);

std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? "" : it->second;
}

// Group commit for the receiver: concurrent deliveries wait while one of them, the leader,
// commits every delivery queued so far in one transaction, so one fsync serves them all. Each
// request still gets its reply only after its own alerts are committed.
class IntakeBatcher {
 public:
  core::Result<app::SignalIntake> Submit(app::ControlPlane& plane,
                                         app::PreparedDelivery& delivery) {
    Pending mine{.delivery = &delivery};
    std::unique_lock lock(mutex_);
    queue_.push_back(&mine);
    while (!mine.result) {
      if (leader_active_) {
        committed_.wait(lock);
        continue;
      }
      leader_active_ = true;
      std::vector<Pending*> batch;
      batch.swap(queue_);
      lock.unlock();

      std::vector<app::PreparedDelivery*> deliveries;
      for (const Pending* pending : batch) deliveries.push_back(pending->delivery);
      auto results = plane.IngestAlertmanagerBatch(deliveries);

      lock.lock();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (results) {
          batch[i]->result = (*results)[i];
        } else {
          batch[i]->result = std::unexpected(results.error());
        }
      }
      leader_active_ = false;
      committed_.notify_all();
    }
    return *std::move(mine.result);
  }

 private:
  struct Pending {
    app::PreparedDelivery* delivery = nullptr;
    std::optional<core::Result<app::SignalIntake>> result;
  };

  std::mutex mutex_;
  std::condition_variable committed_;
  std::vector<Pending*> queue_;
  bool leader_active_ = false;
};

json IntakeJson(const app::SignalIntake& intake) {
  return {{"received", intake.received},     {"recorded", intake.recorded},
          {"duplicates", intake.duplicates}, {"resolved", intake.resolved},
          {"invalid", intake.invalid},       {"truncated_alerts", intake.truncated_alerts},
          {"correlation_job", intake.job_id}};
}

// Checks the sender's credentials over the exact bytes received. The server runs this before any
// other check of the request, and the handler only after it passed.
core::Result<void> AuthenticateAlertmanager(app::ControlPlane& plane, Metrics& metrics,
                                            LogThrottle& rejected_log, LogThrottle& secret_log,
                                            const HttpRequest& request) {
  auto authenticated =
      plane.AuthenticateSignalSender(HeaderOf(request, "authorization"),
                                     HeaderOf(request, "x-backout-signature"), request.raw_body);
  if (!authenticated) {
    if (authenticated.error().code == core::ErrorCode::kUnauthenticated) {
      metrics.Increment(kUnauthenticatedTotal);
      metrics.Increment(kSignalWebhooksRejectedTotal, {{"reason", "unauthenticated"}});
      // The metrics count every rejection; the log gets one line per address and interval.
      if (auto held_back = rejected_log.Admit(request.remote_address)) {
        spdlog::warn(
            "component=signals event=webhook_rejected reason=unauthenticated remote={} "
            "not_logged_since_last={}",
            request.remote_address, *held_back);
      }
    }
    if (authenticated.error().code == core::ErrorCode::kUnavailable) {
      // The receiver's secret cannot be read. The log names the key and the reference, which
      // holds a server path; the sender learns only that it should retry.
      metrics.Increment(kSignalWebhooksRejectedTotal, {{"reason", "unavailable"}});
      if (auto held_back = secret_log.Admit("secret")) {
        spdlog::error(
            "component=signals event=webhook_secret_unreadable not_logged_since_last={} "
            "error=\"{}\"",
            *held_back, core::LogfmtEscape(authenticated.error().message));
      }
      return core::MakeError(core::ErrorCode::kUnavailable,
                             "the receiver cannot check credentials now because its secret "
                             "cannot be read; retry later, and see the server log for the cause");
    }
    return std::unexpected(authenticated.error());
  }
  return {};
}

// Records one delivery whose sender AuthenticateAlertmanager accepted.
core::Result<HttpResponse> ReceiveAlertmanager(app::ControlPlane& plane, Metrics& metrics,
                                               IntakeBatcher& batcher, const HttpRequest& request) {
  // Step 1: decode every alert on its own.
  const auto settings = plane.settings();
  const auto& receiver = settings->config.signals.alertmanager;
  if (!receiver) {
    // A reload removed the receiver after the sender was authenticated.
    return core::MakeError(core::ErrorCode::kNotFound,
                           "the Alertmanager receiver is not configured; add signals.alertmanager "
                           "to the config and reload");
  }
  auto payload = signals::ParseAlertmanagerWebhook(request.raw_body, receiver->service_label);
  if (!payload) {
    metrics.Increment(kSignalWebhooksRejectedTotal, {{"reason", "invalid"}});
    spdlog::warn("component=signals event=webhook_rejected reason=invalid remote={} error=\"{}\"",
                 request.remote_address, core::LogfmtEscape(payload.error().message));
    return std::unexpected(payload.error());
  }

  // Step 2: build the records on this thread, then commit in a batch and reply.
  app::PreparedDelivery prepared = plane.PrepareAlertmanager(*payload);
  auto intake = batcher.Submit(plane, prepared);
  if (!intake) return std::unexpected(intake.error());
  app::LogCommittedDelivery(*payload, *intake);
  metrics.Increment(kSignalAlertsTotal, {{"result", "recorded"}}, intake->recorded);
  metrics.Increment(kSignalAlertsTotal, {{"result", "duplicate"}}, intake->duplicates);
  metrics.Increment(kSignalAlertsTotal, {{"result", "resolved"}}, intake->resolved);
  metrics.Increment(kSignalAlertsTotal, {{"result", "invalid"}}, intake->invalid);
  metrics.Increment(kSignalAlertsTotal, {{"result", "truncated"}},
                    static_cast<double>(intake->truncated_alerts));
  return HttpResponse{.status = 200, .body = IntakeJson(*intake)};
}

}  // namespace

void AddSignalRoutes(Router& router, app::ControlPlane& plane, Metrics& metrics) {
  metrics.Declare(kSignalAlertsTotal, Metrics::Kind::kCounter,
                  "Alerts received by the Alertmanager webhook, by result: recorded, duplicate, "
                  "resolved, invalid, or truncated (dropped by Alertmanager's max_alerts).");
  metrics.Declare(kSignalWebhooksRejectedTotal, Metrics::Kind::kCounter,
                  "Alertmanager webhooks rejected, by reason: unauthenticated, invalid, or "
                  "unavailable (the receiver's secret cannot be read).");

  const auto settings = plane.settings();
  const auto& receiver = settings->config.signals.alertmanager;
  std::optional<size_t> limit;
  if (receiver) limit = static_cast<size_t>(receiver->max_body_bytes);

  router.Add(Route{
      .method = "POST",
      .path = "/api/v1/signals/alertmanager",
      .operation_id = "receiveAlertmanagerWebhook",
      .summary = "Alertmanager webhook receiver (payload version 4). Authenticated by the "
                 "receiver's bearer token or an X-Backout-Signature HMAC, not by a user token.",
      .access = Access::kPublic,
      .request_body = OpenObjectSchema("Alertmanager's webhook payload, version 4."),
      .response = ObjectSchema(
          "What the delivery committed.",
          {Required("received", IntegerSchema("Alerts in the body.")),
           Required("recorded", IntegerSchema("New signals committed.")),
           Required("duplicates", IntegerSchema("Alerts already recorded.")),
           Required("resolved", IntegerSchema("Signals closed by a resolved alert.")),
           Required("invalid", IntegerSchema("Alerts that could not be decoded.")),
           Required("truncated_alerts", IntegerSchema("Alerts Alertmanager dropped.")),
           Required("correlation_job", StringSchema("The correlation job, or empty."))}),
      .handler = [&plane, &metrics, batcher = std::make_shared<IntakeBatcher>()](
                     const HttpRequest& request) -> core::Result<HttpResponse> {
        return ReceiveAlertmanager(plane, metrics, *batcher, request);
      },
      .raw_body = true,
      .max_body_bytes = limit,
      .authenticate_sender =
          [&plane, &metrics,
           rejected_log = std::make_shared<LogThrottle>(
               plane.clock(), LogThrottle::Options{.interval = kRejectedLogInterval}),
           secret_log = std::make_shared<LogThrottle>(
               plane.clock(), LogThrottle::Options{.interval = kRejectedLogInterval})](
              const HttpRequest& request) -> core::Result<void> {
        return AuthenticateAlertmanager(plane, metrics, *rejected_log, *secret_log, request);
      }});

  router.Add(Route{
      .method = "GET",
      .path = "/api/v1/signals",
      .operation_id = "listSignals",
      .summary = "Signals received or raised, with their correlation.",
      .query = {{"service", StringSchema("Only this service's signals.")},
                {"limit", PageLimitSchema()},
                {"after", StringSchema("Return the items that follow this id in list order.")}},
      .response = OpenObjectSchema("A page of signals."),
      .handler = [&plane](const HttpRequest& request) -> core::Result<HttpResponse> {
        app::ListOptions options;
        if (auto limit = ReadPageLimit(request, options); !limit) {
          return std::unexpected(limit.error());
        }
        if (auto cursor = ReadPageCursor(request, IdForm::kSignal, "", options); !cursor) {
          return std::unexpected(cursor.error());
        }
        std::optional<std::string> service;
        if (auto it = request.query.find("service"); it != request.query.end()) {
          service = it->second;
        }
        auto page = plane.ListSignals(*request.caller, service, options);
        if (!page) return std::unexpected(page.error());
        return HttpResponse{
            .body = PageJson(*page, [](const app::SignalRecord& signal) { return json(signal); })};
      }});
}

}  // namespace backout::server
