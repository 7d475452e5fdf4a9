// Detection intake: the Alertmanager webhook's authentication and the commit of its alerts.
#include "app/signals.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <cctype>

#include "app/control_plane.h"
#include "app/jobs.h"
#include "app/records.h"
#include "app/signal_internal.h"
#include "app/try.h"
#include "ledger/hash.h"
#include "store/body_writer.h"

namespace backout::app {
namespace {

constexpr std::string_view kBearerPrefix = "Bearer ";
constexpr std::string_view kSignaturePrefix = "sha256=";

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Whether `authorization` starts with the Bearer scheme, whose name is case-insensitive
// (RFC 9110 section 11.1).
bool HasBearerScheme(std::string_view authorization) {
  if (authorization.size() < kBearerPrefix.size()) return false;
  for (size_t i = 0; i < kBearerPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kBearerPrefix[i]))) {
      return false;
    }
  }
  return true;
}

// The receiver's secret `key` could not be read, so no credentials can be checked. kUnavailable:
// the file or variable may come back, and the sender should retry. The message names the key
// and the reference, with its path, for the server log only.
core::Error UnreadableSecret(std::string_view key, const core::Error& cause) {
  return core::Error{.code = core::ErrorCode::kUnavailable,
                     .message = fmt::format("{}: {}; fix the secret and the receiver works again "
                                            "without a reload",
                                            key, cause.message)};
}

std::string HmacSha256Hex(std::string_view key, std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

SignalRecord FromAlert(const signals::Alert& alert, const signals::WebhookPayload& payload,
                       core::Time now) {
  auto name = alert.labels.find("alertname");
  return SignalRecord{.id = fmt::format("am:{}", alert.Identity()),
                      .source = "alertmanager",
                      .name = name == alert.labels.end() ? "" : name->second,
                      .service = alert.service,
                      .severity = alert.Severity(),
                      .status = std::string(signals::AlertStatusName(alert.status)),
                      .starts_at = alert.starts_at,
                      .ends_at = alert.ends_at,
                      .received_at = now,
                      .labels = alert.labels,
                      .annotations = alert.annotations,
                      .detail = alert.generator_url,
                      .group_key = payload.group_key,
                      .receiver = payload.receiver,
                      .truncated_alerts = payload.truncated_alerts};
}

constexpr char kReceivedAction[] = "signal.received";
constexpr char kReceivedSubject[] = "signals";

// The change of a delivery's "signal.received" ledger entry, which lists its new signals.
nlohmann::json ReceivedChange(const signals::WebhookPayload& delivery, nlohmann::json signals) {
  return {{"source", "alertmanager"},
          {"group_key", delivery.group_key},
          {"receiver", delivery.receiver},
          {"truncated_alerts", delivery.truncated_alerts},
          {"signals", std::move(signals)}};
}

// Encodes the delivery's "signal.received" entry as if every alert were new, into
// prepared.entry, so that the batch's writer only adds the sequence and time in that case.
void PrepareReceivedEntry(PreparedDelivery& prepared) {
  if (prepared.received.empty()) return;
  // The lines are moved into the change to encode it and then moved back, so none is copied.
  nlohmann::json change = ReceivedChange(*prepared.payload, std::move(prepared.received));
  auto entry =
      ledger::PrepareEntry(SystemCaller().name(), kReceivedAction, kReceivedSubject, change);
  prepared.received = std::move(change["signals"].get_ref<nlohmann::json::array_t&>());
  // On an error the batch encodes the entry again inside the transaction, which fails the same
  // way and reports it there.
  if (entry) prepared.entry = std::move(*entry);
}

// Adds a timeline event about `signal` to its incident, when it has one.
core::Result<void> NoteOnIncident(store::Transaction& tx, const SignalRecord& signal,
                                  core::Time now, std::string kind, std::string detail) {
  if (signal.incident_id.empty()) return {};
  BACKOUT_TRY(auto stored, LoadIncident(tx, signal.incident_id));
  AddTimeline(stored.value, now, SystemCaller(), std::move(kind), std::move(detail));
  return Save(tx, stored);
}

// Records one prepared delivery's alerts inside `tx`, appending the ids of new firing signals to
// `fired`.
core::Result<SignalIntake> RecordDelivery(store::Transaction& tx, PreparedDelivery& prepared,
                                          const Caller& system, core::Time now,
                                          std::vector<std::string>& fired) {
  const signals::WebhookPayload& delivery = *prepared.payload;
  SignalIntake intake{.received = static_cast<int>(delivery.alerts.size()),
                      .invalid = static_cast<int>(delivery.invalid_alerts.size()),
                      .truncated_alerts = delivery.truncated_alerts};
  // One ledger entry lists every new signal of the delivery, as one commit records them.
  std::vector<size_t> recorded;
  recorded.reserve(delivery.alerts.size());
  // A new signal is recorded, and correlated when it fires.
  auto record_new = [&](size_t index, bool firing) {
    ++intake.recorded;
    if (firing) fired.push_back(prepared.records[index].id);
    recorded.push_back(index);
  };
  for (size_t index = 0; index < delivery.alerts.size(); ++index) {
    const signals::Alert& alert = delivery.alerts[index];
    const SignalRecord& incoming = prepared.records[index];

    // A firing alert seen before is a duplicate whatever its stored state, so the insert alone
    // decides. This saves reading and decoding the stored signal for every new alert.
    if (alert.status == signals::AlertStatus::kFiring) {
      const auto& body = prepared.bodies[index];
      if (!body) return std::unexpected(body.error());
      // The body is left empty (JSON null) because PutSerialized stores `body` instead.
      store::Object object{
          .kind = kSignalKind, .id = incoming.id, .service = incoming.service, .body = nullptr};
      auto inserted = tx.PutSerialized(object, *body);
      if (inserted) {
        record_new(index, true);
      } else if (inserted.error().code == core::ErrorCode::kAlreadyExists) {
        ++intake.duplicates;
      } else {
        return std::unexpected(inserted.error());
      }
      continue;
    }

    BACKOUT_TRY(auto existing, tx.Get(kSignalKind, incoming.id));
    if (!existing) {
      BACKOUT_TRY(auto stored, Insert(tx, kSignalKind, incoming.id, incoming.service, incoming));
      record_new(index, false);
      continue;
    }

    // Seen before: a repeat of the same state changes nothing, a resolved alert closes it.
    BACKOUT_TRY(SignalRecord signal, core::FromJson<SignalRecord>(existing->body));
    if (alert.status == signals::AlertStatus::kFiring || signal.status == "resolved") {
      ++intake.duplicates;
      continue;
    }
    signal.status = "resolved";
    signal.ends_at = alert.ends_at.value_or(now);
    existing->body = nlohmann::json(signal);
    BACKOUT_CHECK(tx.Put(*existing));
    ++intake.resolved;
    BACKOUT_CHECK(NoteOnIncident(tx, signal, now, "signal_resolved",
                                 fmt::format("alert {} on {} resolved at {}", signal.name,
                                             signal.service, core::FormatTime(*signal.ends_at))));
    BACKOUT_CHECK(
        Ledger(tx, system, "signal.resolved", signal_internal::SignalSubject(signal.id),
               {{"ends_at", core::FormatTime(*signal.ends_at)}, {"incident", signal.incident_id}}));
  }

  if (recorded.size() == delivery.alerts.size() && prepared.entry) {
    // Every alert is new, so the entry prepared before the transaction lists exactly them.
    BACKOUT_CHECK(tx.AppendPreparedLedger(*prepared.entry));
  } else if (!recorded.empty()) {
    nlohmann::json received = nlohmann::json::array();
    for (size_t index : recorded) received.push_back(std::move(prepared.received[index]));
    store::LedgerRecord record{.actor = system.name(),
                               .action = kReceivedAction,
                               .subject = kReceivedSubject,
                               .change = ReceivedChange(delivery, std::move(received))};
    // Moved in, so that the store does not copy the list.
    BACKOUT_TRY(ledger::Entry entry, tx.AppendLedger(std::move(record)));
    // Handed back so that the request's thread frees the list after the commit.
    prepared.received = std::move(entry.change["signals"].get_ref<nlohmann::json::array_t&>());
  }

  // Alertmanager drops what exceeds max_alerts and never sends it later, so the count is kept.
  if (delivery.truncated_alerts > 0 || !delivery.invalid_alerts.empty()) {
    nlohmann::json invalid = nlohmann::json::array();
    for (const auto& item : delivery.invalid_alerts) {
      invalid.push_back({{"index", item.index}, {"reason", item.reason}});
    }
    BACKOUT_CHECK(Ledger(tx, system, "signal.delivery_incomplete", "signals",
                         {{"group_key", delivery.group_key},
                          {"receiver", delivery.receiver},
                          {"truncated_alerts", delivery.truncated_alerts},
                          {"invalid_alerts", invalid}}));
  }
  return intake;
}

}  // namespace

void LogCommittedDelivery(const signals::WebhookPayload& payload, const SignalIntake& intake) {
  spdlog::info(
      "component=signals event=webhook_committed group_key=\"{}\" received={} recorded={} "
      "duplicates={} resolved={} invalid={} truncated={} job={} batch={}",
      payload.group_key, intake.received, intake.recorded, intake.duplicates, intake.resolved,
      intake.invalid, intake.truncated_alerts, intake.job_id.empty() ? "-" : intake.job_id,
      intake.batch);
}

void to_json(nlohmann::json& json, const SignalRecord& signal) {
  // Emplaced one by one: an initializer list copies every value twice, and this runs once per
  // alert inside the intake's write transaction.
  json = nlohmann::json::object();
  auto& object = json.get_ref<nlohmann::json::object_t&>();
  object.emplace("id", signal.id);
  object.emplace("source", signal.source);
  object.emplace("name", signal.name);
  object.emplace("service", signal.service);
  object.emplace("severity", signal.severity);
  object.emplace("status", signal.status);
  object.emplace("starts_at", core::FormatTime(signal.starts_at));
  object.emplace("ends_at", signal.ends_at ? nlohmann::json(core::FormatTime(*signal.ends_at))
                                           : nlohmann::json(nullptr));
  object.emplace("received_at", core::FormatTime(signal.received_at));
  object.emplace("labels", signal.labels);
  object.emplace("annotations", signal.annotations);
  object.emplace("detail", signal.detail);
  object.emplace("group_key", signal.group_key);
  object.emplace("receiver", signal.receiver);
  object.emplace("truncated_alerts", signal.truncated_alerts);
  object.emplace("deliveries", signal.deliveries);
  object.emplace("correlated", signal.correlated);
  object.emplace("incident_id", signal.incident_id);
  object.emplace("suspected_change_id", signal.suspected_change_id);
  object.emplace("score", signal.score);
  object.emplace("correlation_reason", signal.correlation_reason);
}

core::Result<store::SerializedBody> SerializeSignal(const SignalRecord& signal) {
  // The members in the byte order of their names, which is the order of to_json's object. Their
  // names need no escapes, so PlainKey copies them without a scan.
  store::BodyWriter writer(fmt::format("body of {}/{}", kSignalKind, signal.id));
  writer.BeginObject();
  writer.PlainKey("annotations");
  writer.StringMap(signal.annotations);
  writer.PlainKey("correlated");
  writer.Bool(signal.correlated);
  writer.PlainKey("correlation_reason");
  writer.String(signal.correlation_reason);
  writer.PlainKey("deliveries");
  writer.Integer(signal.deliveries);
  writer.PlainKey("detail");
  writer.String(signal.detail);
  writer.PlainKey("ends_at");
  if (signal.ends_at) {
    writer.String(core::FormatTime(*signal.ends_at));
  } else {
    writer.Null();
  }
  writer.PlainKey("group_key");
  writer.String(signal.group_key);
  writer.PlainKey("id");
  writer.String(signal.id);
  writer.PlainKey("incident_id");
  writer.String(signal.incident_id);
  writer.PlainKey("labels");
  writer.StringMap(signal.labels);
  writer.PlainKey("name");
  writer.String(signal.name);
  writer.PlainKey("received_at");
  writer.String(core::FormatTime(signal.received_at));
  writer.PlainKey("receiver");
  writer.String(signal.receiver);
  writer.PlainKey("score");
  writer.Number(signal.score);
  writer.PlainKey("service");
  writer.String(signal.service);
  writer.PlainKey("severity");
  writer.String(signal.severity);
  writer.PlainKey("source");
  writer.String(signal.source);
  writer.PlainKey("starts_at");
  writer.String(core::FormatTime(signal.starts_at));
  writer.PlainKey("status");
  writer.String(signal.status);
  writer.PlainKey("suspected_change_id");
  writer.String(signal.suspected_change_id);
  writer.PlainKey("truncated_alerts");
  writer.Integer(signal.truncated_alerts);
  writer.EndObject();
  return std::move(writer).Finish();
}

void from_json(const nlohmann::json& json, SignalRecord& signal) {
  auto time_of = [](const nlohmann::json& value) -> core::Time {
    auto parsed = core::ParseTime(value.get<std::string>());
    if (!parsed) throw std::invalid_argument(parsed.error().message);
    return *parsed;
  };
  signal.id = json.at("id").get<std::string>();
  signal.source = json.value("source", "");
  signal.name = json.value("name", "");
  signal.service = json.value("service", "");
  signal.severity = json.value("severity", "");
  signal.status = json.value("status", "");
  signal.starts_at = time_of(json.at("starts_at"));
  if (json.contains("ends_at") && !json["ends_at"].is_null()) {
    signal.ends_at = time_of(json["ends_at"]);
  }
  signal.received_at = time_of(json.at("received_at"));
  signal.labels = json.value("labels", std::map<std::string, std::string>());
  signal.annotations = json.value("annotations", std::map<std::string, std::string>());
  signal.detail = json.value("detail", "");
  signal.group_key = json.value("group_key", "");
  signal.receiver = json.value("receiver", "");
  signal.truncated_alerts = json.value("truncated_alerts", int64_t{0});
  signal.deliveries = json.value("deliveries", int64_t{1});
  signal.correlated = json.value("correlated", false);
  signal.incident_id = json.value("incident_id", "");
  signal.suspected_change_id = json.value("suspected_change_id", "");
  signal.score = json.value("score", 0.0);
  signal.correlation_reason = json.value("correlation_reason", "");
}

namespace signal_internal {

core::Result<std::vector<core::Change>> LoadServiceChanges(store::Transaction& tx,
                                                           const std::string& service) {
  std::vector<core::Change> changes;
  std::string after;
  while (true) {
    BACKOUT_TRY(auto objects, tx.List(store::ListQuery{
                                  .kind = kChangeKind, .service = service, .after_id = after}));
    for (const store::Object& object : objects) {
      BACKOUT_TRY(core::Change change, core::FromJson<core::Change>(object.body));
      changes.push_back(std::move(change));
    }
    if (objects.size() < 1000) break;
    after = objects.back().id;
  }
  return changes;
}

core::Result<std::string> EnqueueCorrelation(store::Transaction& tx,
                                             const std::vector<std::string>& signal_ids,
                                             core::Time now) {
  BACKOUT_TRY(int64_t job,
              tx.EnqueueJob(kSignalCorrelationJob, "signals", {{"signal_ids", signal_ids}}, now));
  return std::to_string(job);
}

core::Severity IncidentSeverity(std::string_view signal_severity) {
  if (auto parsed = core::ParseSeverity(signal_severity)) return *parsed;
  if (signal_severity == "critical" || signal_severity == "page") return core::Severity::kSev1;
  if (signal_severity == "error" || signal_severity == "major") return core::Severity::kSev2;
  if (signal_severity == "info") return core::Severity::kSev4;
  return core::Severity::kSev3;
}

std::string SignalSubject(std::string_view id) { return fmt::format("signal/{}", id); }

}  // namespace signal_internal

core::Result<void> ControlPlane::AuthenticateSignalSender(std::string_view authorization,
                                                          std::string_view signature,
                                                          std::string_view body) const {
  const auto current = settings();
  const auto& receiver = current->config.signals.alertmanager;
  if (!receiver) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "the Alertmanager receiver is not configured; add signals.alertmanager "
                           "to the config and reload");
  }
  if (receiver->bearer_token && HasBearerScheme(authorization)) {
    auto token = receiver->bearer_token->Resolve();
    if (!token)
      return std::unexpected(UnreadableSecret("signals.alertmanager.bearer_token", token.error()));
    if (ConstantTimeEquals(authorization.substr(kBearerPrefix.size()), *token)) return {};
    return core::MakeError(core::ErrorCode::kUnauthenticated,
                           "the bearer token is not the receiver's; check the http_config of "
                           "Alertmanager's webhook_config");
  }
  if (receiver->hmac_secret && signature.starts_with(kSignaturePrefix)) {
    auto secret = receiver->hmac_secret->Resolve();
    if (!secret)
      return std::unexpected(UnreadableSecret("signals.alertmanager.hmac_secret", secret.error()));
    if (ConstantTimeEquals(signature.substr(kSignaturePrefix.size()),
                           HmacSha256Hex(*secret, body))) {
      return {};
    }
    return core::MakeError(core::ErrorCode::kUnauthenticated,
                           "the X-Backout-Signature does not match the body; sign the exact body "
                           "with HMAC-SHA256 and the receiver's hmac_secret");
  }
  return core::MakeError(core::ErrorCode::kUnauthenticated,
                         "missing credentials; send `Authorization: Bearer TOKEN`{}",
                         receiver->hmac_secret ? " or `X-Backout-Signature: sha256=HEX`" : "");
}

core::Result<SignalIntake> ControlPlane::IngestAlertmanager(
    const signals::WebhookPayload& payload) {
  PreparedDelivery prepared = PrepareAlertmanager(payload);
  BACKOUT_TRY(auto intakes, IngestAlertmanagerBatch({&prepared}));
  LogCommittedDelivery(payload, intakes.front());
  return intakes.front();
}

PreparedDelivery ControlPlane::PrepareAlertmanager(const signals::WebhookPayload& payload) const {
  const core::Time now = clock_.Now();
  PreparedDelivery prepared{.payload = &payload};
  prepared.records.reserve(payload.alerts.size());
  prepared.bodies.reserve(payload.alerts.size());
  prepared.received.reserve(payload.alerts.size());
  for (const signals::Alert& alert : payload.alerts) {
    SignalRecord record = FromAlert(alert, payload, now);
    prepared.bodies.push_back(SerializeSignal(record));
    // Emplaced, like to_json below, to skip the initializer list's copies.
    auto& listed = prepared.received.emplace_back(nlohmann::json::object())
                       .get_ref<nlohmann::json::object_t&>();
    listed.emplace("signal", record.id);
    listed.emplace("name", record.name);
    listed.emplace("service", record.service);
    listed.emplace("severity", record.severity);
    listed.emplace("status", record.status);
    listed.emplace("starts_at", core::FormatTime(record.starts_at));
    prepared.records.push_back(std::move(record));
  }
  PrepareReceivedEntry(prepared);
  return prepared;
}

core::Result<std::vector<SignalIntake>> ControlPlane::IngestAlertmanagerBatch(
    const std::vector<PreparedDelivery*>& deliveries) {
  const core::Time now = clock_.Now();
  const Caller system = SystemCaller();
  std::vector<SignalIntake> intakes;

  BACKOUT_CHECK(store_.Write([&](store::Transaction& tx) -> core::Result<void> {
    intakes.clear();
    std::vector<std::string> fired;
    for (PreparedDelivery* delivery : deliveries) {
      BACKOUT_TRY(SignalIntake intake, RecordDelivery(tx, *delivery, system, now, fired));
      intakes.push_back(std::move(intake));
    }
    if (!fired.empty()) {
      BACKOUT_TRY(std::string job, signal_internal::EnqueueCorrelation(tx, fired, now));
      for (SignalIntake& intake : intakes) {
        if (intake.recorded > 0) intake.job_id = job;
      }
    }
    return {};
  }));

  for (SignalIntake& intake : intakes) intake.batch = deliveries.size();
  return intakes;
}

core::Result<Page<SignalRecord>> ControlPlane::ListSignals(const Caller& caller,
                                                           std::optional<std::string> service,
                                                           const ListOptions& options) {
  const auto current = settings();
  Page<SignalRecord> page;
  BACKOUT_CHECK(
      Read(caller, "signal.list", "signals", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        BACKOUT_TRY(auto objects, tx.List(store::ListQuery{.kind = kSignalKind,
                                                           .service = service,
                                                           .after_id = options.after,
                                                           .limit = options.limit + 1}));
        for (const store::Object& object : objects) {
          if (static_cast<int>(page.items.size()) == options.limit) {
            page.next_after = page.items.back().id;
            break;
          }
          BACKOUT_TRY(SignalRecord signal, core::FromJson<SignalRecord>(object.body));
          page.items.push_back(std::move(signal));
        }
        return {};
      }));
  return page;
}

}  // namespace backout::app
