#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "app/requests.h"
#include "core/domain.h"
#include "core/error.h"
#include "server/router.h"

// JSON forms of what the API returns and reads, beyond the domain types' own JSON.
namespace backout::server {

// The incident as stored, plus the names the API contract uses: suspected_change, review,
// created_at and updated_at.
nlohmann::json IncidentJson(const core::Incident& incident);

nlohmann::json JobJson(const app::JobView& job);

template <typename T, typename ToJson>
nlohmann::json PageJson(const app::Page<T>& page, ToJson to_json) {
  nlohmann::json items = nlohmann::json::array();
  for (const T& item : page.items) items.push_back(to_json(item));
  return {{"items", std::move(items)}, {"next_after", page.next_after}};
}

// The form of one list's ids, which the page cursor `after` of that list must have.
enum class IdForm {
  kNumbered,  // a prefix and a number without leading zeros: CHG-12
  kName,      // a user name: letters, digits, '.', '_' and '-', starting with a letter or digit
  kSignal,    // a signal source and its identity: am:..., rule:..., probe:...
};

// Reads the query parameter `after` into `options.after`. An absent or empty `after` is the first
// page. Fails with kInvalidArgument, naming `after`, its value and the expected form, when the
// value is not an id of the list's form. For kNumbered, `prefix` is the text before the number
// ("CHG-"). Checking the form keeps a cursor such as CHG-03 from skipping items: the store orders
// ids by length before text, so CHG-03 would sort after CHG-9.
core::Result<void> ReadPageCursor(const HttpRequest& request, IdForm form, std::string_view prefix,
                                  app::ListOptions& options);

// The page size a list returns when the query has no `limit`, and the range `limit` accepts.
inline constexpr int kDefaultPageLimit = 100;
inline constexpr int kMinPageLimit = 1;
inline constexpr int kMaxPageLimit = 1000;

// The schema of the query parameter `limit`, with the range above.
Schema PageLimitSchema();

// Reads the query parameter `limit` into `options.limit`: kDefaultPageLimit when absent. Fails
// with kInvalidArgument, naming `limit` and its value, when the value is not a whole number from
// kMinPageLimit to kMaxPageLimit written without leading zeros.
core::Result<void> ReadPageLimit(const HttpRequest& request, app::ListOptions& options);

// Readers of validated request bodies. Each fails with kInvalidArgument naming the field when a
// value has the right JSON type but is not acceptable (an unknown role, an impossible date).
core::Result<app::NewUser> ReadNewUser(const nlohmann::json& body);
core::Result<app::NewChange> ReadNewChange(const nlohmann::json& body);
core::Result<app::NewIncident> ReadNewIncident(const nlohmann::json& body);
core::Result<app::DecisionRequest> ReadDecision(const nlohmann::json& body);
core::Result<app::DocumentRequest> ReadDocument(const nlohmann::json& body);
core::Result<app::NewActionItem> ReadNewActionItem(const nlohmann::json& body);
core::Result<app::ActionItemCompletion> ReadCompletion(const nlohmann::json& body);

}  // namespace backout::server
