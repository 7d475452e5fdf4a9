#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "app/caller.h"
#include "app/requests.h"
#include "core/domain.h"
#include "core/error.h"
#include "store/store.h"

// Loading and saving the domain objects the use cases share, and writing their ledger entries.
// Every function works inside the caller's transaction.
namespace backout::app {

inline constexpr char kUserKind[] = "user";
inline constexpr char kTokenKind[] = "token";
inline constexpr char kChangeKind[] = "change";
inline constexpr char kIncidentKind[] = "incident";
inline constexpr char kActionItemKind[] = "action_item";  // maps an item id to its incident
inline constexpr char kFreezeKind[] = "freeze";
inline constexpr char kAttachmentKind[] = "attachment";  // content by SHA-256 digest

// A domain value with the stored object it came from, so saving keeps optimistic concurrency.
template <typename T>
struct Stored {
  store::Object object;
  T value;
};

// Decodes the body of `object`, the `what` with id `id`, as T. kNotFound names `what` and the id.
template <typename T>
core::Result<Stored<T>> DecodeStored(core::Result<std::optional<store::Object>> object,
                                     std::string_view id, std::string_view what) {
  if (!object) return std::unexpected(object.error());
  if (!object->has_value()) {
    return core::MakeError(core::ErrorCode::kNotFound, "{} {} not found", what, id);
  }
  auto value = core::FromJson<T>((*object)->body);
  if (!value) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored {} {} cannot be read: {}", what,
                           id, value.error().message);
  }
  return Stored<T>{std::move(**object), *std::move(value)};
}

// Loads kind/id and decodes its body as T. kNotFound names `what` and the id.
template <typename T>
core::Result<Stored<T>> Load(store::Transaction& tx, std::string_view kind, std::string_view id,
                             std::string_view what) {
  return DecodeStored<T>(tx.Get(kind, id), id, what);
}

// Writes `stored.value` back as the object's body.
template <typename T>
core::Result<void> Save(store::Transaction& tx, Stored<T>& stored) {
  stored.object.body = nlohmann::json(stored.value);
  return tx.Put(stored.object);
}

// Inserts a new object of `kind` with `id`, indexed by `service`.
template <typename T>
core::Result<Stored<T>> Insert(store::Transaction& tx, std::string_view kind, std::string id,
                               std::string service, const T& value) {
  Stored<T> stored{store::Object{.kind = std::string(kind),
                                 .id = std::move(id),
                                 .service = std::move(service),
                                 .body = nlohmann::json(value)},
                   value};
  auto put = tx.Put(stored.object);
  if (!put) return std::unexpected(put.error());
  return stored;
}

core::Result<Stored<core::Incident>> LoadIncident(store::Transaction& tx, std::string_view id);
// LoadIncident for an incident the transaction saves, with Transaction::GetForUpdate, so that
// concurrent writers of the incident wait for each other instead of conflicting at the save.
core::Result<Stored<core::Incident>> LoadIncidentForUpdate(store::Transaction& tx,
                                                           std::string_view id);

// Appends a ledger entry for `caller`.
core::Result<void> Ledger(store::Transaction& tx, const Caller& caller, std::string_view action,
                          std::string_view subject, nlohmann::json change);

// Adds an event to the incident's timeline.
void AddTimeline(core::Incident& incident, core::Time time, const Caller& caller, std::string kind,
                 std::string detail);

std::string IncidentSubject(std::string_view id);

core::Result<Freeze> LoadFreeze(store::Transaction& tx, std::string_view service);
core::Result<void> SaveFreeze(store::Transaction& tx, const Freeze& freeze);

}  // namespace backout::app
