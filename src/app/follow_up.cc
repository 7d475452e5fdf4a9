// Documentation, the review, action items and closing.
#include <openssl/evp.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/review_template.h"
#include "app/try.h"
#include "core/state_machine.h"
#include "ledger/hash.h"

namespace backout::app {
namespace {

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\n") == std::string_view::npos;
}

core::Result<std::string> DecodeBase64(std::string_view text, std::string_view name) {
  if (text.size() % 4 != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "attachment {} is not valid base64: its length is not a multiple of 4",
                           name);
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int>(text.size()));
  if (decoded < 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "attachment {} is not valid base64",
                           name);
  }
  // EVP_DecodeBlock counts the padding as zero bytes; drop them.
  size_t padding = 0;
  if (text.ends_with("==")) {
    padding = 2;
  } else if (text.ends_with("=")) {
    padding = 1;
  }
  out.resize(static_cast<size_t>(decoded) - padding);
  return out;
}

// Checks that the caller may complete `item`: its owner may, whatever their role; anyone else
// needs a role the state machine allows for completing action items.
core::Result<void> CheckMayComplete(const Caller& caller, const core::ActionItem& item,
                                    const core::Incident& incident, const core::Policy& policy) {
  BACKOUT_CHECK(core::CheckOnRoster(caller.user, policy));
  auto moved = core::Transition(incident.state, core::Action::kCompleteActionItem,
                                caller.user.roles, policy);
  if (moved) return {};
  if (moved.error().code == core::ErrorCode::kPermissionDenied && caller.name() == item.owner) {
    return {};
  }
  return std::unexpected(moved.error());
}

}  // namespace

core::Result<core::Incident> ControlPlane::Document(const Caller& caller, std::string_view id,
                                                    const DocumentRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);

  // Decode before the transaction, so a bad attachment costs no store work.
  std::vector<std::pair<core::Attachment, std::string>> attachments;
  for (const NewAttachment& attachment : request.attachments) {
    if (IsBlank(attachment.name)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "every attachment needs a name");
    }
    BACKOUT_TRY(std::string content, DecodeBase64(attachment.content_base64, attachment.name));
    core::Attachment meta{.name = attachment.name,
                          .sha256 = ledger::ToHex(ledger::Sha256(content)),
                          .size = static_cast<int64_t>(content.size()),
                          .added_by = caller.name(),
                          .added_at = now};
    attachments.emplace_back(std::move(meta), attachment.content_base64);
  }

  core::Incident updated;
  BACKOUT_CHECK(Write(
      caller, "incident.document", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, core::Action::kDocument, caller.user.roles,
                                     current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        if (IsBlank(request.root_cause)) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "field `root_cause` must not be blank");
        }

        nlohmann::json attachment_log = nlohmann::json::array();
        for (const auto& [meta, content_base64] : attachments) {
          // Content is stored once per digest; the same file attached twice shares it.
          BACKOUT_TRY(auto existing, tx.Get(kAttachmentKind, meta.sha256));
          if (!existing) {
            store::Object object{.kind = kAttachmentKind,
                                 .id = meta.sha256,
                                 .service = incident.service,
                                 .body = {{"content_base64", content_base64}, {"size", meta.size}}};
            BACKOUT_CHECK(tx.Put(object));
          }
          incident.attachments.push_back(meta);
          attachment_log.push_back(
              {{"name", meta.name}, {"sha256", meta.sha256}, {"size", meta.size}});
        }
        incident.root_cause = request.root_cause;
        incident.contributing_factors = request.contributing_factors;
        incident.state = next;
        AddTimeline(
            incident, now, caller, "documented",
            fmt::format("{} recorded the root cause ({} contributing factors, {} "
                        "attachments)",
                        caller.name(), request.contributing_factors.size(), attachments.size()));
        BACKOUT_CHECK(Save(tx, stored));
        updated = incident;
        return Ledger(tx, caller, "incident.documented", subject,
                      {{"root_cause", request.root_cause},
                       {"contributing_factors", request.contributing_factors},
                       {"attachments", attachment_log}});
      }));
  return updated;
}

core::Result<std::string> ControlPlane::WriteReview(const Caller& caller, std::string_view id,
                                                    std::optional<std::string> markdown) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  std::string review;
  BACKOUT_CHECK(
      Write(caller, "incident.review", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, core::Action::kWriteReview, caller.user.roles,
                                     current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        const bool templated = !markdown || markdown->empty();
        review = templated ? RenderReviewTemplate(incident) : *markdown;
        incident.review_markdown = review;
        incident.review_written_by = caller.name();
        incident.review_written_at = now;
        incident.state = next;
        AddTimeline(incident, now, caller, "review_written",
                    fmt::format("{} wrote the review{}", caller.name(),
                                templated ? " from the built-in template" : ""));
        BACKOUT_CHECK(Save(tx, stored));
        return Ledger(tx, caller, "incident.review_written", subject,
                      {{"sha256", ledger::ToHex(ledger::Sha256(review))},
                       {"bytes", review.size()},
                       {"templated", templated}});
      }));
  return review;
}

core::Result<std::string> ControlPlane::GetReview(const Caller& caller, std::string_view id) {
  const auto current = settings();
  std::string review;
  BACKOUT_CHECK(Read(
      caller, "incident.review_show", IncidentSubject(id),
      [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        if (stored.value.review_markdown.empty()) {
          return core::MakeError(core::ErrorCode::kNotFound,
                                 "incident {} has no review yet; write one with `backout review "
                                 "write {}`",
                                 id, id);
        }
        review = std::move(stored.value.review_markdown);
        return {};
      }));
  return review;
}

core::Result<core::ActionItem> ControlPlane::AddActionItem(const Caller& caller,
                                                           std::string_view id,
                                                           const NewActionItem& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  core::ActionItem item;
  BACKOUT_CHECK(
      Write(caller, "action_item.add", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(core::IncidentState next,
                    core::Transition(incident.state, core::Action::kAddActionItem,
                                     caller.user.roles, current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));

        if (request.no_action) {
          if (IsBlank(request.reason)) {
            return core::MakeError(core::ErrorCode::kInvalidArgument,
                                   "\"no action\" needs a reason; pass --reason TEXT");
          }
          incident.no_action_reason = request.reason;
          incident.state = next;
          AddTimeline(
              incident, now, caller, "no_action",
              fmt::format("{} recorded that no action follows: {}", caller.name(), request.reason));
          BACKOUT_CHECK(Save(tx, stored));
          item = core::ActionItem{.incident_id = incident.id,
                                  .title = "no action",
                                  .status = core::ActionItemStatus::kNotDoing,
                                  .reason = request.reason,
                                  .created_by = caller.name(),
                                  .created_at = now};
          return Ledger(tx, caller, "incident.no_action", subject, {{"reason", request.reason}});
        }

        if (IsBlank(request.title) || IsBlank(request.owner) || !request.due) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 "an action item needs a title, an owner and a due date "
                                 "(YYYY-MM-DD), or no_action with a reason");
        }
        BACKOUT_TRY(int64_t number, tx.NextNumber(kActionItemKind));
        item = core::ActionItem{.id = fmt::format("AI-{}", number),
                                .incident_id = incident.id,
                                .title = request.title,
                                .owner = request.owner,
                                .due = request.due,
                                .status = core::ActionItemStatus::kOpen,
                                .created_by = caller.name(),
                                .created_at = now};
        store::Object index{.kind = kActionItemKind,
                            .id = item.id,
                            .service = incident.service,
                            .body = {{"incident_id", incident.id}}};
        BACKOUT_CHECK(tx.Put(index));
        incident.action_items.push_back(item);
        incident.state = next;
        BACKOUT_CHECK(ScheduleOverdueCheck(tx, item));
        AddTimeline(incident, now, caller, "action_item_added",
                    fmt::format("{} added {} for {}, due {}: {}", caller.name(), item.id,
                                item.owner, core::FormatDate(*item.due), item.title));
        BACKOUT_CHECK(Save(tx, stored));
        return Ledger(tx, caller, "action_item.added", fmt::format("action_item/{}", item.id),
                      nlohmann::json(item));
      }));
  return item;
}

core::Result<std::vector<core::ActionItem>> ControlPlane::ListActionItems(const Caller& caller,
                                                                          std::string_view id) {
  const auto current = settings();
  std::vector<core::ActionItem> items;
  BACKOUT_CHECK(Read(caller, "action_item.list", IncidentSubject(id),
                     [&](store::Transaction& tx) -> core::Result<void> {
                       BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead,
                                                          current->policy));
                       BACKOUT_TRY(auto stored, LoadIncident(tx, id));
                       items = std::move(stored.value.action_items);
                       return {};
                     }));
  return items;
}

core::Result<core::ActionItem> ControlPlane::CompleteActionItem(
    const Caller& caller, std::string_view action_item_id, const ActionItemCompletion& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = fmt::format("action_item/{}", action_item_id);
  core::ActionItem completed;
  BACKOUT_CHECK(Write(
      caller, "action_item.complete", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto index, tx.Get(kActionItemKind, action_item_id));
        if (!index) {
          return core::MakeError(core::ErrorCode::kNotFound, "action item {} not found",
                                 action_item_id);
        }
        const std::string incident_id = index->body.value("incident_id", "");
        BACKOUT_TRY(auto stored, LoadIncident(tx, incident_id));
        core::Incident& incident = stored.value;
        auto item = std::find_if(incident.action_items.begin(), incident.action_items.end(),
                                 [&](const core::ActionItem& i) { return i.id == action_item_id; });
        if (item == incident.action_items.end()) {
          return core::MakeError(core::ErrorCode::kCorruption,
                                 "action item {} is indexed under {} but missing from it",
                                 action_item_id, incident_id);
        }
        BACKOUT_CHECK(CheckMayComplete(caller, *item, incident, current->policy));
        if (item->status != core::ActionItemStatus::kOpen) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "action item {} is already {}", action_item_id,
                                 core::ActionItemStatusName(item->status));
        }
        const core::ActionItemStatus status =
            request.not_doing ? core::ActionItemStatus::kNotDoing : core::ActionItemStatus::kDone;
        BACKOUT_CHECK(core::CheckActionItemCompletion(status, request.evidence, request.reason));
        item->status = status;
        item->evidence_link = request.evidence;
        item->reason = request.reason;
        item->completed_at = now;
        item->completed_by = caller.name();
        completed = *item;
        AddTimeline(incident, now, caller, "action_item_completed",
                    fmt::format("{} marked {} {}", caller.name(), completed.id,
                                core::ActionItemStatusName(status)));
        BACKOUT_CHECK(Save(tx, stored));
        return Ledger(tx, caller, "action_item.completed", subject,
                      {{"status", core::ActionItemStatusName(status)},
                       {"evidence", request.evidence},
                       {"reason", request.reason}});
      }));
  return completed;
}

core::Result<core::Incident> ControlPlane::Close(const Caller& caller, std::string_view id) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  core::Incident updated;
  BACKOUT_CHECK(
      Write(caller, "incident.close", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_TRY(core::IncidentState next, core::Transition(incident.state, core::Action::kClose,
                                                               caller.user.roles, current->policy));
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        BACKOUT_CHECK(core::CheckClosure(incident, current->policy));
        incident.state = next;
        incident.closed_by = caller.name();
        incident.closed_at = now;
        AddTimeline(incident, now, caller, "closed",
                    fmt::format("{} closed the incident", caller.name()));
        BACKOUT_CHECK(Save(tx, stored));
        updated = incident;
        return Ledger(tx, caller, "incident.closed", subject, {{"state", "closed"}});
      }));
  return updated;
}

}  // namespace backout::app
