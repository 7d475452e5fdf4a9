// Documentation, the review, action items and closing.
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/records.h"
#include "app/review_template.h"
#include "app/try.h"
#include "core/attachment_limits.h"
#include "core/id_order.h"
#include "core/state_machine.h"
#include "evidence/review_document.h"
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

// An evidence link must be an http:// or https:// URL (scheme in any case) with a host and no
// whitespace or control characters. Other schemes are rejected because readers open the link:
// javascript: and data: run or show content the server never checked.
core::Result<void> CheckEvidenceUrl(std::string_view evidence) {
  std::string scheme;
  const size_t separator = evidence.find("://");
  if (separator != std::string_view::npos) {
    for (char c : evidence.substr(0, separator)) {
      scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  const bool scheme_valid = scheme == "http" || scheme == "https";
  const bool has_host = separator != std::string_view::npos && separator + 3 < evidence.size() &&
                        evidence[separator + 3] != '/';
  const bool printable = std::ranges::none_of(evidence, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7F;
  });
  if (scheme_valid && has_host && printable) return {};
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "invalid evidence link '{}': only http:// and https:// URLs with a host "
                         "are accepted, e.g. https://git.example.com/org/repo/pull/42",
                         evidence);
}

// The stored owner, status and history of a review (kind kReviewKind).
struct ReviewMeta {
  std::string owner;
  std::string status;
  std::optional<core::Time> completed_at;
  std::vector<ReviewEvent> history;
};

nlohmann::json EventJson(const ReviewEvent& event) {
  return {{"time", core::FormatTime(event.time)},
          {"by", event.by},
          {"status", event.status},
          {"owner", event.owner},
          {"note", event.note}};
}

nlohmann::json MetaJson(std::string_view incident_id, const ReviewMeta& meta) {
  nlohmann::json history = nlohmann::json::array();
  for (const ReviewEvent& event : meta.history) history.push_back(EventJson(event));
  return {{"incident", incident_id},
          {"owner", meta.owner},
          {"status", meta.status},
          {"completed_at", meta.completed_at ? nlohmann::json(core::FormatTime(*meta.completed_at))
                                             : nlohmann::json(nullptr)},
          {"history", history}};
}

std::string TextAt(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

core::Result<ReviewMeta> MetaFromJson(const nlohmann::json& body) {
  ReviewMeta meta{.owner = TextAt(body, "owner"), .status = TextAt(body, "status")};
  if (const std::string completed = TextAt(body, "completed_at"); !completed.empty()) {
    BACKOUT_TRY(meta.completed_at, core::ParseTime(completed));
  }
  for (const nlohmann::json& item : body.value("history", nlohmann::json::array())) {
    BACKOUT_TRY(core::Time time, core::ParseTime(TextAt(item, "time")));
    meta.history.push_back(ReviewEvent{.time = time,
                                       .by = TextAt(item, "by"),
                                       .status = TextAt(item, "status"),
                                       .owner = TextAt(item, "owner"),
                                       .note = TextAt(item, "note")});
  }
  return meta;
}

// Loads the review's owner and status, or empty ones when none is stored.
core::Result<std::pair<std::optional<store::Object>, ReviewMeta>> LoadReviewMeta(
    store::Transaction& tx, std::string_view incident_id) {
  BACKOUT_TRY(auto object, tx.Get(kReviewKind, incident_id));
  if (!object) return std::pair<std::optional<store::Object>, ReviewMeta>{};
  auto meta = MetaFromJson(object->body);
  if (!meta) {
    return core::MakeError(core::ErrorCode::kCorruption, "stored review of {} cannot be read: {}",
                           incident_id, meta.error().message);
  }
  return std::pair{std::move(object), *std::move(meta)};
}

core::Result<void> SaveReviewMeta(store::Transaction& tx, const core::Incident& incident,
                                  std::optional<store::Object> object, const ReviewMeta& meta) {
  store::Object stored = object.value_or(
      store::Object{.kind = kReviewKind, .id = incident.id, .service = incident.service});
  stored.body = MetaJson(incident.id, meta);
  return tx.Put(stored);
}

ReviewView MakeView(const core::Incident& incident, const ReviewMeta& meta) {
  return ReviewView{.incident_id = incident.id,
                    .markdown = incident.review_markdown,
                    .owner = meta.owner,
                    .status = meta.status.empty() && !incident.review_markdown.empty()
                                  ? std::string("draft")
                                  : meta.status,
                    .written_by = incident.review_written_by,
                    .written_at = incident.review_written_at,
                    .completed_at = meta.completed_at,
                    .history = meta.history};
}

core::Result<void> CheckReviewStatus(std::string_view status) {
  if (std::ranges::find(kReviewStatuses, status) != std::end(kReviewStatuses)) return {};
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "invalid review status '{}': use draft, in_review or completed", status);
}

// Whether `user` is listed under `users` in the config. The policy's roster is not enough, because
// it also contains the bootstrap admin, whom the config does not list unless it names "admin".
bool IsConfiguredUser(std::string_view user, const Config& config) {
  return std::ranges::find(config.users, user, &UserConfig::name) != config.users.end();
}

// A review owner must be a user listed under `users` in the config in force.
core::Result<void> CheckReviewOwner(std::string_view owner, const Config& config) {
  if (!IsConfiguredUser(owner, config)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "review owner {} is not on the roster; name a user listed under "
                           "`users` in the config",
                           owner);
  }
  return {};
}

// An action item owner must be a user listed under `users` in the config, like a review owner.
core::Result<void> CheckActionItemOwner(std::string_view owner, const Config& config) {
  if (!IsConfiguredUser(owner, config)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "action item owner {} is not on the roster; name a user listed under "
                           "`users` in the config",
                           owner);
  }
  return {};
}

// Applies a new owner and status to `meta`, recording one history event when either changes.
// Returns whether anything changed.
bool ApplyReviewChange(ReviewMeta& meta, const Caller& caller, core::Time now,
                       const std::string& owner, const std::string& status, std::string note) {
  if (owner == meta.owner && status == meta.status) return false;
  meta.owner = owner;
  if (status != meta.status) {
    meta.completed_at = status == "completed" ? std::optional<core::Time>(now) : std::nullopt;
  }
  meta.status = status;
  meta.history.push_back(ReviewEvent{
      .time = now, .by = caller.name(), .status = status, .owner = owner, .note = std::move(note)});
  return true;
}

// Writes the ledger entries for the owner and status changes between `before` and `after`.
core::Result<void> LedgerReviewChanges(store::Transaction& tx, const Caller& caller,
                                       const std::string& subject, const ReviewMeta& before,
                                       const ReviewMeta& after) {
  if (before.owner != after.owner) {
    BACKOUT_CHECK(Ledger(tx, caller, "review.owner_changed", subject,
                         {{"from", before.owner}, {"to", after.owner}}));
  }
  if (before.status != after.status) {
    BACKOUT_CHECK(Ledger(tx, caller, "review.status_changed", subject,
                         {{"from", before.status}, {"to", after.status}}));
  }
  return {};
}

}  // namespace

nlohmann::json ToJson(const ReviewView& review) {
  nlohmann::json history = nlohmann::json::array();
  for (const ReviewEvent& event : review.history) history.push_back(EventJson(event));
  auto time = [](const std::optional<core::Time>& value) {
    return value ? nlohmann::json(core::FormatTime(*value)) : nlohmann::json(nullptr);
  };
  return {{"incident", review.incident_id},
          {"markdown", review.markdown},
          {"owner", review.owner},
          {"status", review.status},
          {"written_by", review.written_by},
          {"written_at", time(review.written_at)},
          {"completed_at", time(review.completed_at)},
          {"history", history}};
}

nlohmann::json ToJson(const ActionItemRow& row) {
  nlohmann::json out = row.item;
  out["service"] = row.service;
  out["days_overdue"] = row.days_overdue;
  return out;
}

core::Result<core::Incident> ControlPlane::Document(const Caller& caller, std::string_view id,
                                                    const DocumentRequest& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);

  // Decode before the transaction, so a bad attachment costs no store work.
  std::vector<std::pair<core::Attachment, std::string>> attachments;
  size_t total_bytes = 0;
  for (const NewAttachment& attachment : request.attachments) {
    if (IsBlank(attachment.name)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "every attachment needs a name");
    }
    BACKOUT_TRY(std::string content, DecodeBase64(attachment.content_base64, attachment.name));
    total_bytes += content.size();
    if (total_bytes > core::kMaxDocumentAttachmentBytes) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "attachment {} brings the total to {} bytes, over the limit of {} "
                             "bytes (10 MiB) for one request; attach fewer or smaller files",
                             attachment.name, total_bytes, core::kMaxDocumentAttachmentBytes);
    }
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
  BACKOUT_TRY(ReviewView review, SaveReview(caller, id, ReviewWrite{.markdown = markdown}));
  return review.markdown;
}

core::Result<ReviewView> ControlPlane::SaveReview(const Caller& caller, std::string_view id,
                                                  const ReviewWrite& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  ReviewView view;
  BACKOUT_CHECK(
      Write(caller, "incident.review", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        auto moved = core::Transition(incident.state, core::Action::kWriteReview, caller.user.roles,
                                      current->policy);
        if (!moved && moved.error().code == core::ErrorCode::kFailedPrecondition &&
            incident.state == core::IncidentState::kClosed) {
          // The state machine lists only incident actions, but the review's status and owner
          // still change after closing (UpdateReview), so the message names that too.
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "{}, and the review's status or owner (`backout review status "
                                 "{} STATUS`); the review text cannot change once the incident "
                                 "is closed",
                                 moved.error().message, id);
        }
        if (!moved) return std::unexpected(moved.error());
        const core::IncidentState next = *moved;
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        BACKOUT_TRY(auto loaded, LoadReviewMeta(tx, id));
        auto& [meta_object, meta] = loaded;
        const ReviewMeta before = meta;

        std::string owner = request.owner;
        if (owner.empty()) owner = meta.owner.empty() ? caller.name() : meta.owner;
        if (owner != meta.owner) BACKOUT_CHECK(CheckReviewOwner(owner, current->config));

        std::optional<core::Change> change;
        if (incident.suspected_change_id) {
          BACKOUT_TRY(auto object, tx.Get(kChangeKind, *incident.suspected_change_id));
          if (object) {
            auto decoded = core::FromJson<core::Change>(object->body);
            if (decoded) change = *std::move(decoded);
          }
        }
        const bool templated = !request.markdown || request.markdown->empty();
        std::string review;
        if (templated) {
          BACKOUT_TRY(review,
                      RenderReviewTemplate(
                          ReviewInputs{.incident = incident,
                                       .suspected_change = change,
                                       .owner = owner,
                                       .status = meta.status.empty() ? "draft" : meta.status},
                          current->config.review.template_text));
        } else {
          review = *request.markdown;
        }

        // A completed review whose text changes needs completing again.
        std::string status = meta.status.empty() ? "draft" : meta.status;
        std::string note = meta.status.empty() ? "written" : "";
        if (status == "completed" && review != incident.review_markdown) {
          status = "in_review";
          note = "text replaced after completion";
        }
        ApplyReviewChange(meta, caller, now, owner, status, note);

        incident.review_markdown = review;
        incident.review_written_by = caller.name();
        incident.review_written_at = now;
        incident.state = next;
        const std::string template_name = !templated ? ""
                                          : current->config.review.template_path.empty()
                                              ? "built-in"
                                              : current->config.review.template_path.string();
        AddTimeline(incident, now, caller, "review_written",
                    fmt::format("{} wrote the review{} (owner {}, status {})", caller.name(),
                                templated ? fmt::format(" from the {} template", template_name)
                                          : std::string(),
                                meta.owner, meta.status));
        BACKOUT_CHECK(Save(tx, stored));
        BACKOUT_CHECK(SaveReviewMeta(tx, incident, meta_object, meta));
        view = MakeView(incident, meta);
        BACKOUT_CHECK(Ledger(tx, caller, "incident.review_written", subject,
                             {{"sha256", ledger::ToHex(ledger::Sha256(review))},
                              {"bytes", review.size()},
                              {"templated", templated},
                              {"template", template_name},
                              {"owner", meta.owner},
                              {"status", meta.status}}));
        return LedgerReviewChanges(tx, caller, subject, before, meta);
      }));
  return view;
}

core::Result<ReviewView> ControlPlane::UpdateReview(const Caller& caller, std::string_view id,
                                                    const ReviewUpdate& request) {
  const auto current = settings();
  const core::Time now = clock_.Now();
  const std::string subject = IncidentSubject(id);
  if (request.status.empty() && request.owner.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "a review update needs a status, an owner or both");
  }
  if (!request.status.empty()) BACKOUT_CHECK(CheckReviewStatus(request.status));
  ReviewView view;
  BACKOUT_CHECK(Write(
      caller, "incident.review_update", subject, [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(auto stored, LoadIncident(tx, id));
        core::Incident& incident = stored.value;
        BACKOUT_CHECK(core::CheckOnRoster(caller.user, current->policy));
        BACKOUT_TRY(auto loaded, LoadReviewMeta(tx, id));
        auto& [meta_object, meta] = loaded;
        const ReviewMeta before = meta;
        if (!caller.user.HasRole(core::Role::kEngineeringLead) && caller.name() != meta.owner) {
          return core::MakeError(core::ErrorCode::kPermissionDenied,
                                 "changing the review of {} needs the role engineering-lead or "
                                 "being its owner ({}); user {} is neither",
                                 id, meta.owner.empty() ? "none yet" : meta.owner, caller.name());
        }
        if (incident.state != core::IncidentState::kDocumenting &&
            incident.state != core::IncidentState::kClosed) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "incident {} is {}; its review can change once it is documenting "
                                 "or closed",
                                 id, core::IncidentStateName(incident.state));
        }
        if (incident.review_markdown.empty()) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "incident {} has no review yet; write one with `backout review "
                                 "write {}`",
                                 id, id);
        }
        // A review written before statuses existed has none and counts as a draft.
        const std::string current_status = meta.status.empty() ? "draft" : meta.status;
        const std::string owner = request.owner.empty() ? meta.owner : request.owner;
        const std::string status = request.status.empty() ? current_status : request.status;
        if (owner != meta.owner) BACKOUT_CHECK(CheckReviewOwner(owner, current->config));
        if (status == "completed" && owner.empty()) {
          return core::MakeError(core::ErrorCode::kFailedPrecondition,
                                 "the review of {} has no owner; name one with --owner before "
                                 "completing it",
                                 id);
        }
        if (ApplyReviewChange(meta, caller, now, owner, status, "")) {
          AddTimeline(incident, now, caller, "review_updated",
                      fmt::format("{} set the review's owner to {} and status to {}", caller.name(),
                                  owner, status));
          BACKOUT_CHECK(Save(tx, stored));
          BACKOUT_CHECK(SaveReviewMeta(tx, incident, meta_object, meta));
          BACKOUT_CHECK(LedgerReviewChanges(tx, caller, subject, before, meta));
        }
        view = MakeView(incident, meta);
        return {};
      }));
  return view;
}

core::Result<ReviewView> ControlPlane::ShowReview(const Caller& caller, std::string_view id) {
  const auto current = settings();
  ReviewView view;
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
        BACKOUT_TRY(auto loaded, LoadReviewMeta(tx, id));
        view = MakeView(stored.value, loaded.second);
        return {};
      }));
  return view;
}

core::Result<std::string> ControlPlane::ReviewHtml(const Caller& caller, std::string_view id) {
  BACKOUT_TRY(ReviewView review, ShowReview(caller, id));
  // The owner and status line goes through cmark-gfm with the text, which escapes both.
  BACKOUT_TRY(std::string fragment, evidence::MarkdownToHtml(evidence::ReviewForBundle(
                                        review.markdown, review.owner, review.status)));
  return evidence::HtmlPage(fmt::format("Post-incident review {}", id), fragment);
}

core::Result<std::vector<ActionItemRow>> ControlPlane::ListAllActionItems(
    const Caller& caller, const ActionItemFilter& filter) {
  const auto current = settings();
  const auto today = std::chrono::floor<std::chrono::days>(clock_.Now());
  std::vector<ActionItemRow> rows;
  if (filter.service && current->config.FindService(*filter.service) == nullptr) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {} is not in the configuration; list the services with "
                           "`backout service list`",
                           *filter.service);
  }
  bool owner_known = !filter.owner || IsConfiguredUser(*filter.owner, current->config);
  BACKOUT_CHECK(Read(
      caller, "action_item.list", "action_item", [&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_CHECK(core::CheckOperation(caller.user, core::Operation::kRead, current->policy));
        constexpr int kPage = 500;
        std::string after;
        while (true) {
          BACKOUT_TRY(auto page, tx.List(store::ListQuery{.kind = kIncidentKind,
                                                          .service = filter.service,
                                                          .after_id = after,
                                                          .limit = kPage}));
          for (const store::Object& object : page) {
            BACKOUT_TRY(core::Incident incident, core::FromJson<core::Incident>(object.body));
            for (core::ActionItem& item : incident.action_items) {
              if (filter.owner && item.owner != *filter.owner) continue;
              owner_known = true;
              int late = 0;
              if (item.status == core::ActionItemStatus::kOpen && item.due && *item.due < today) {
                late = static_cast<int>((today - *item.due).count());
              }
              if (filter.overdue_only && late == 0) continue;
              rows.push_back(ActionItemRow{
                  .item = std::move(item), .service = incident.service, .days_overdue = late});
            }
          }
          if (static_cast<int>(page.size()) < kPage) break;
          after = page.back().id;
        }
        return {};
      }));
  // An owner who left the roster may still own items, so only a name that is neither on the
  // roster nor an owner of any item is an error.
  if (!owner_known) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "owner {} is not on the roster and owns no action item; name a user "
                           "listed under `users` in the config",
                           *filter.owner);
  }
  std::ranges::stable_sort(rows, [](const ActionItemRow& a, const ActionItemRow& b) {
    return a.item.due != b.item.due ? a.item.due < b.item.due : core::IdLess(a.item.id, b.item.id);
  });
  return rows;
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
        BACKOUT_CHECK(CheckActionItemOwner(request.owner, current->config));
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
        if (status == core::ActionItemStatus::kDone) {
          BACKOUT_CHECK(CheckEvidenceUrl(request.evidence));
        }
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
