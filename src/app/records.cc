#include "app/records.h"

#include <fmt/format.h>

#include "core/time.h"

namespace backout::app {

void to_json(nlohmann::json& json, const Freeze& freeze) {
  json = {{"service", freeze.service},
          {"frozen", freeze.frozen},
          {"reason", freeze.reason},
          {"since", freeze.since ? nlohmann::json(core::FormatTime(*freeze.since)) : nullptr},
          {"incident", freeze.incident},
          {"set_by", freeze.set_by},
          {"lifted_by", freeze.lifted_by},
          {"lifted_at",
           freeze.lifted_at ? nlohmann::json(core::FormatTime(*freeze.lifted_at)) : nullptr},
          {"lift_reason", freeze.lift_reason}};
}

void from_json(const nlohmann::json& json, Freeze& freeze) {
  freeze.service = json.at("service").get<std::string>();
  freeze.frozen = json.at("frozen").get<bool>();
  freeze.reason = json.value("reason", "");
  freeze.incident = json.value("incident", "");
  freeze.set_by = json.value("set_by", "");
  freeze.lifted_by = json.value("lifted_by", "");
  freeze.lift_reason = json.value("lift_reason", "");
  auto read_time = [&](const char* key) -> std::optional<core::Time> {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) return std::nullopt;
    auto time = core::ParseTime(it->get<std::string>());
    if (!time) throw std::invalid_argument(time.error().message);
    return *time;
  };
  freeze.since = read_time("since");
  freeze.lifted_at = read_time("lifted_at");
}

core::Result<Stored<core::Incident>> LoadIncident(store::Transaction& tx, std::string_view id) {
  return Load<core::Incident>(tx, kIncidentKind, id, "incident");
}

core::Result<Stored<core::Incident>> LoadIncidentForUpdate(store::Transaction& tx,
                                                           std::string_view id) {
  return DecodeStored<core::Incident>(tx.GetForUpdate(kIncidentKind, id), id, "incident");
}

core::Result<void> Ledger(store::Transaction& tx, const Caller& caller, std::string_view action,
                          std::string_view subject, nlohmann::json change) {
  auto entry = tx.AppendLedger(store::LedgerRecord{.actor = caller.name(),
                                                   .action = std::string(action),
                                                   .subject = std::string(subject),
                                                   .change = std::move(change)});
  if (!entry) return std::unexpected(entry.error());
  return {};
}

void AddTimeline(core::Incident& incident, core::Time time, const Caller& caller, std::string kind,
                 std::string detail) {
  incident.timeline.push_back(core::TimelineEvent{
      .time = time, .actor = caller.name(), .kind = std::move(kind), .detail = std::move(detail)});
}

std::string IncidentSubject(std::string_view id) { return fmt::format("incident/{}", id); }

core::Result<Freeze> LoadFreeze(store::Transaction& tx, std::string_view service) {
  auto object = tx.Get(kFreezeKind, service);
  if (!object) return std::unexpected(object.error());
  if (!object->has_value()) return Freeze{.service = std::string(service)};
  try {
    return (*object)->body.get<Freeze>();
  } catch (const std::exception& error) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored freeze of {} cannot be read: {}",
                           service, error.what());
  }
}

core::Result<void> SaveFreeze(store::Transaction& tx, const Freeze& freeze) {
  auto existing = tx.Get(kFreezeKind, freeze.service);
  if (!existing) return std::unexpected(existing.error());
  store::Object object = existing->value_or(
      store::Object{.kind = kFreezeKind, .id = freeze.service, .service = freeze.service});
  object.body = nlohmann::json(freeze);
  return tx.Put(object);
}

}  // namespace backout::app
