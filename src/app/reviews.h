#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/domain.h"
#include "core/time.h"

// Requests and results of the post-incident review and the action item reports.
namespace backout::app {

// The review's owner and status, stored as an object of this kind under the incident's id; the
// Markdown itself stays in Incident::review_markdown.
inline constexpr char kReviewKind[] = "review";

// Review statuses, in their usual order.
inline constexpr std::string_view kReviewStatuses[] = {"draft", "in_review", "completed"};

struct ReviewWrite {
  std::optional<std::string> markdown;  // empty: fill the configured or built-in template
  std::string owner;                    // empty: keep the owner, or the caller on a first write
};

// A change of status, owner or both; at least one is set.
struct ReviewUpdate {
  std::string status;  // one of kReviewStatuses, or empty
  std::string owner;   // a user on the roster, or empty
};

// One change of the review's owner or status, as its history keeps it.
struct ReviewEvent {
  core::Time time{};
  std::string by;
  std::string status;
  std::string owner;
  std::string note;
};

// The stored review with its owner, status and history.
struct ReviewView {
  std::string incident_id;
  std::string markdown;
  std::string owner;
  std::string status;
  std::string written_by;
  std::optional<core::Time> written_at;
  std::optional<core::Time> completed_at;
  std::vector<ReviewEvent> history;
};

nlohmann::json ToJson(const ReviewView& review);

struct ActionItemFilter {
  std::optional<std::string> owner;
  std::optional<std::string> service;
  bool overdue_only = false;
};

// An action item with its incident's service and, when it is open past its due date, how many
// whole days late it is as of the request.
struct ActionItemRow {
  core::ActionItem item;
  std::string service;
  int days_overdue = 0;
};

nlohmann::json ToJson(const ActionItemRow& row);

}  // namespace backout::app
