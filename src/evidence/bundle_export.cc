// Export of one incident's evidence bundle.
#include <algorithm>
#include <optional>
#include <set>
#include <span>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/domain.h"
#include "core/time.h"
#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "evidence/bundle_files.h"
#include "evidence/chart.h"
#include "evidence/png.h"
#include "evidence/review_document.h"
#include "ledger/canonical.h"
#include "ledger/entry.h"
#include "ledger/hash.h"
#include "ledger/merkle.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

constexpr uint64_t kReadChunk = 4096;

// Ledger actions after which the policy in force matters to an auditor.
bool NeedsPolicyInForce(std::string_view action) {
  return action == "incident.decided" || action == "incident.approved_retroactively" ||
         action == "incident.rollback_requested";
}

bool IsKeyEntry(std::string_view action) {
  return action == "ledger.key_introduced" || action == "ledger.key_rotated";
}

// A string member of a JSON object, or "" when it is absent or not a string.
std::string StringOf(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// What the store holds about the incident, read in one transaction. The bundle copies the stored
// JSON as it is rather than decoding it into core::Incident, so fields a newer version records
// (such as a check's raw response) reach the auditor too.
struct IncidentRecord {
  std::string id;
  json body;                            // the stored incident, as stored
  std::map<std::string, json> jobs;     // job id -> payload, for the incident's jobs
  std::map<std::string, json> changes;  // change id -> stored change
  // SHA-256 hex -> raw query_range body of a Prometheus check, stored once per digest.
  std::map<std::string, std::string> series_bodies;
  json review;  // the review's owner and status (object of kind "review"), null without one
};

// Decodes padded RFC 4648 base64, as the store keeps attachments; empty on malformed input.
std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int padding = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      const int value = j >= 4 - static_cast<size_t>(padding) ? 0 : value_of(text[i + j]);
      if (value < 0) return std::nullopt;
      group = (group << 6) | static_cast<uint32_t>(value);
    }
    out += static_cast<char>((group >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((group >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(group & 0xff);
  }
  return out;
}

// The incident's ledger entries with their proofs against one checkpoint.
struct LedgerSelection {
  std::vector<ledger::StoredEntry> entries;  // in sequence order
  std::vector<std::vector<ledger::Hash>> proofs;
  ledger::Checkpoint checkpoint;
  std::optional<json> policy_in_force;          // the last policy entry before the latest decision
  std::map<std::string, std::string> key_pems;  // key id -> PEM, from the key entries
};

core::Result<IncidentRecord> ReadIncident(store::Store& store, std::string_view id) {
  IncidentRecord record;
  auto read = store.Read([&](store::Transaction& tx) -> core::Result<void> {
    auto object = tx.Get("incident", id);
    if (!object) return std::unexpected(object.error());
    if (!object->has_value()) {
      return core::MakeError(core::ErrorCode::kNotFound,
                             "incident {} not found; list incidents with `backout incident list`",
                             id);
    }
    record.body = (*object)->body;
    record.id = StringOf(record.body, "id");
    if (record.id != id) {
      return core::MakeError(core::ErrorCode::kCorruption, "stored incident {} records the id '{}'",
                             id, record.id);
    }

    auto review = tx.Get("review", id);
    if (!review) return std::unexpected(review.error());
    if (review->has_value()) record.review = (*review)->body;

    auto jobs = tx.ListJobs(fmt::format("incident/{}", id));
    if (!jobs) return std::unexpected(jobs.error());
    for (const store::Job& job : *jobs) record.jobs[std::to_string(job.id)] = job.payload;

    std::set<std::string> change_ids;
    if (!StringOf(record.body, "suspected_change_id").empty()) {
      change_ids.insert(StringOf(record.body, "suspected_change_id"));
    }
    const json assessment = record.body.value("assessment", json());
    if (!StringOf(assessment, "target_change_id").empty()) {
      change_ids.insert(StringOf(assessment, "target_change_id"));
    }
    for (const std::string& change_id : change_ids) {
      auto change = tx.Get("change", change_id);
      if (!change) return std::unexpected(change.error());
      if (change->has_value()) record.changes[change_id] = (*change)->body;
    }

    // The raw series of each Prometheus check, kept by the validation as an attachment object
    // named by its digest. A missing or damaged one is left out; the manifest then lacks it.
    for (const json& validation : record.body.value("validations", json::array())) {
      for (const json& series : validation.value("metric_series", json::array())) {
        const std::string digest = StringOf(series, "response_sha256");
        if (digest.empty() || record.series_bodies.contains(digest)) continue;
        auto stored = tx.Get("attachment", digest);
        if (!stored) return std::unexpected(stored.error());
        if (!stored->has_value()) continue;
        auto body = DecodeBase64(StringOf((*stored)->body, "content_base64"));
        if (!body) {
          spdlog::warn("component=evidence incident={} event=series_not_decoded digest={}", id,
                       digest);
          continue;
        }
        record.series_bodies[digest] = *std::move(body);
      }
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return record;
}

std::set<std::string> SubjectsOf(const IncidentRecord& record) {
  std::set<std::string> subjects{fmt::format("incident/{}", record.id)};
  for (const json& item : record.body.value("action_items", json::array())) {
    if (!StringOf(item, "id").empty()) {
      subjects.insert(fmt::format("action_item/{}", StringOf(item, "id")));
    }
  }
  for (const auto& [change_id, change] : record.changes) {
    subjects.insert(fmt::format("change/{}", change_id));
  }
  return subjects;
}

// Picks the earliest stored checkpoint whose tree covers entry `last`, so the choice does not move
// when later, unrelated entries are appended.
core::Result<ledger::Checkpoint> CoveringCheckpoint(store::Store& store, uint64_t last,
                                                    uint64_t entry_count) {
  auto checkpoints = store.ReadCheckpoints();
  if (!checkpoints) return std::unexpected(checkpoints.error());
  const ledger::Checkpoint* chosen = nullptr;
  for (const ledger::Checkpoint& checkpoint : *checkpoints) {
    if (checkpoint.tree_size <= last || checkpoint.tree_size > entry_count) continue;
    if (chosen == nullptr || checkpoint.tree_size < chosen->tree_size) chosen = &checkpoint;
  }
  if (chosen == nullptr) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "no stored checkpoint covers ledger entry {}, although an export "
                           "signs one first; run `backout ledger verify` to find the damage",
                           last);
  }
  return *chosen;
}

core::Result<LedgerSelection> SelectLedger(store::Store& store, const IncidentRecord& record) {
  const std::set<std::string> subjects = SubjectsOf(record);
  auto count = store.EntryCount();
  if (!count) return std::unexpected(count.error());

  LedgerSelection selection;
  std::vector<ledger::Hash> leaves;
  leaves.reserve(*count);
  std::set<uint64_t> chosen;
  std::optional<ledger::StoredEntry> last_policy;
  std::optional<uint64_t> policy_for_latest_decision;
  std::map<uint64_t, ledger::StoredEntry> rows;

  // Scan the whole log once: the incident's entries are spread among everyone else's.
  while (leaves.size() < *count) {
    auto chunk = store.ReadEntries(leaves.size(), std::min(kReadChunk, *count - leaves.size()));
    if (!chunk) return std::unexpected(chunk.error());
    if (chunk->empty()) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "the ledger ends at entry {} but reports {} entries", leaves.size(),
                             *count);
    }
    for (ledger::StoredEntry& row : *chunk) {
      leaves.push_back(row.leaf_hash);
      auto entry = ledger::DecodeEntry(row.encoded);
      if (!entry) {
        return core::MakeError(core::ErrorCode::kCorruption,
                               "ledger entry {} cannot be decoded: {}; run `backout ledger "
                               "verify`",
                               row.sequence, entry.error().message);
      }
      bool keep = subjects.contains(entry->subject) || IsKeyEntry(entry->action);
      if (IsKeyEntry(entry->action)) {
        selection.key_pems[entry->change.value("key_id", "")] =
            entry->change.value("public_key", "");
      }
      if (entry->action == "policy.loaded") last_policy = row;
      if (subjects.contains(entry->subject) && NeedsPolicyInForce(entry->action) && last_policy) {
        chosen.insert(last_policy->sequence);
        rows.emplace(last_policy->sequence, *last_policy);
        if (entry->action != "incident.rollback_requested") {
          policy_for_latest_decision = last_policy->sequence;
        }
      }
      if (keep) {
        chosen.insert(row.sequence);
        rows.emplace(row.sequence, row);
      }
    }
  }
  if (chosen.empty()) {
    return core::MakeError(core::ErrorCode::kNotFound, "the ledger has no entry for incident {}",
                           record.id);
  }

  auto checkpoint = CoveringCheckpoint(store, *chosen.rbegin(), *count);
  if (!checkpoint) return std::unexpected(checkpoint.error());
  const std::span<const ledger::Hash> tree =
      std::span<const ledger::Hash>(leaves).first(checkpoint->tree_size);
  const ledger::Hash root = ledger::RootOf(tree);
  if (root != checkpoint->root) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "the stored ledger's first {} entries have root {}, but their signed "
                           "checkpoint says {}; run `backout ledger verify`",
                           checkpoint->tree_size, ledger::ToHex(root),
                           ledger::ToHex(checkpoint->root));
  }

  // NOTE: each proof is computed from all leaves, O(n) hashes per entry; a log of millions of
  // entries makes an export take seconds.
  for (uint64_t sequence : chosen) {
    auto proof = ledger::InclusionProof(sequence, tree);
    if (!proof) return std::unexpected(proof.error());
    selection.entries.push_back(rows.at(sequence));
    selection.proofs.push_back(*std::move(proof));
  }
  selection.checkpoint = *checkpoint;
  if (policy_for_latest_decision) {
    auto policy = ledger::DecodeEntry(rows.at(*policy_for_latest_decision).encoded);
    if (policy) {
      selection.policy_in_force =
          json{{"ledger_sequence", policy->sequence}, {"time", core::FormatTime(policy->time)}};
      selection.policy_in_force->update(policy->change);
    }
  }
  return selection;
}

json DecisionFile(const IncidentRecord& record, const LedgerSelection& selection) {
  const json& body = record.body;
  json decisions = body.value("decisions", json::array());
  json latest = nullptr;
  json retroactive = json::array();
  for (const json& decision : decisions) {
    if (decision.value("retroactive", false)) {
      retroactive.push_back(decision);
    } else {
      latest = decision;
    }
  }
  const json assessment = body.value("assessment", json());
  const std::string assessment_digest =
      assessment.is_object() ? assessment.value("digest", "") : std::string();
  const bool go = latest.is_object() && latest.value("kind", "") == "go";

  // Each rollback is judged by the decision in force at its request, so a no-go recorded after a
  // rollback is listed as a later decision and does not withdraw that rollback's authorization.
  const json rollbacks = body.value("rollbacks", json::array());
  json authorizations = json::array();
  for (const internal::RollbackAuthorization& authorization :
       internal::AuthorizeRollbacks(decisions, rollbacks)) {
    authorizations.push_back(
        {{"job_id", authorization.job_id},
         {"authorized", authorization.authorized},
         {"authorized_by", authorization.decision},
         {"approved_digest_matches_plan", authorization.approved_digest_matches_plan},
         {"detail", authorization.detail}});
  }
  return json{{"incident", record.id},
              {"external_ticket", StringOf(body, "external_ticket")},
              {"go", go},
              {"decision", latest},
              {"decisions", decisions},
              {"retroactive_approvals", retroactive},
              {"assessment", assessment},
              {"approved_digest_matches_assessment",
               latest.is_object() && !assessment_digest.empty() &&
                   latest.value("approved_digest", "") == assessment_digest},
              {"rollback_authorizations", authorizations},
              {"later_decisions", internal::DecisionsAfterLastRollback(decisions, rollbacks)},
              {"policy_in_force", selection.policy_in_force ? *selection.policy_in_force : json()}};
}

// The stored execution result of a rollback job, or an empty object.
json ExecutionResultOf(const IncidentRecord& record, const std::string& job_id) {
  auto job = record.jobs.find(job_id);
  if (job == record.jobs.end() || !job->second.is_object()) return json::object();
  auto result = job->second.find("result");
  if (result == job->second.end() || !result->is_object()) return json::object();
  return *result;
}

void AddRollbackFiles(const IncidentRecord& record, BundleFiles& files) {
  const json rollbacks = record.body.value("rollbacks", json::array());
  if (rollbacks.empty()) return;
  std::string transcript;
  json tool_records = json::array();
  for (const json& rollback : rollbacks) {
    const std::string job_id = rollback.value("job_id", "");
    const json result = ExecutionResultOf(record, job_id);
    const std::string from_version = result.value("from_version", "");
    const std::string target_version = rollback.value("target_version", "");
    for (const json& entry : result.value("transcript", json::array())) {
      json line = entry;
      line["job_id"] = job_id;
      line["from_version"] = from_version;
      line["target_version"] = target_version;
      transcript += internal::CompactJson(line) + "\n";
    }
    tool_records.push_back({{"job_id", job_id},
                            {"provider", rollback.value("provider", "")},
                            {"outcome", rollback.value("outcome", json())},
                            {"message", rollback.value("message", "")},
                            {"approver", rollback.value("approver", "")},
                            {"executor", rollback.value("executor", "")},
                            {"emergency", rollback.value("emergency", false)},
                            {"emergency_reason", rollback.value("emergency_reason", "")},
                            {"plan_digest", rollback.value("plan_digest", "")},
                            {"requested_at", rollback.value("requested_at", json())},
                            {"started_at", rollback.value("started_at", json())},
                            {"finished_at", rollback.value("finished_at", json())},
                            {"from_version", from_version},
                            {"target_version", target_version},
                            {"live_version", result.value("live_version", "")},
                            {"tool_details", result.value("details", json::object())},
                            {"read_back", rollback.value("read_back", json())},
                            {"confirmation", rollback.value("confirmation", json())}});
  }
  files[internal::kTranscript] = transcript;
  files[internal::kToolRecord] = internal::PrettyJson(tool_records);
}

// A file name made of the characters [A-Za-z0-9._-] only.
std::string SafeName(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    out += plain ? c : '_';
  }
  return out.empty() ? "check" : out;
}

std::optional<core::Time> TimeOf(const json& object, const char* key) {
  auto time = core::ParseTime(StringOf(object, key));
  if (!time) return std::nullopt;
  return *time;
}

// Draws a Prometheus observation's recorded query_range response with the change, the rollback
// and the recovery marked, when the validation recorded the raw response.
std::optional<std::string> ChartOf(const IncidentRecord& record, const json& observation) {
  json response;
  for (const char* key : {"raw_response", "response", "query_range_response"}) {
    if (observation.contains(key)) response = observation[key];
  }
  if (response.is_null()) return std::nullopt;
  std::optional<double> threshold;
  if (observation.value("threshold", json()).is_number()) {
    threshold = observation["threshold"].get<double>();
  }

  internal::ChartMarks marks;
  auto change = record.changes.find(StringOf(record.body, "suspected_change_id"));
  if (change != record.changes.end()) marks.change = TimeOf(change->second, "time");
  for (const json& rollback : record.body.value("rollbacks", json::array())) {
    if (!marks.rollback) marks.rollback = TimeOf(rollback, "started_at");
  }
  for (const json& validation : record.body.value("validations", json::array())) {
    if (validation.value("finding", json()) == "recovered") {
      marks.recovery = TimeOf(validation, "finished_at");
    }
  }
  const std::string query = StringOf(observation, "query");
  const std::string title = query.empty() ? StringOf(observation, "check")
                                          : StringOf(observation, "check") + ": " + query;
  return internal::RenderSeriesSvg(response, title, threshold, marks);
}

// Adds a chart as `base`.svg and, rendered from it, `base`.png for readers that cannot show SVG.
// A chart that cannot be rendered keeps its SVG only: the recorded response is the evidence and
// the pictures are conveniences.
void AddChart(const std::string& incident_id, const std::string& base, std::string svg,
              BundleFiles& files) {
  auto png = RenderPng(svg);
  if (png) {
    files[base + ".png"] = *std::move(png);
  } else {
    spdlog::warn("component=evidence incident={} event=chart_not_rendered file={}.svg error=\"{}\"",
                 incident_id, base, png.error().message);
  }
  files[base + ".svg"] = std::move(svg);
}

void AddValidationFiles(const IncidentRecord& record, BundleFiles& files) {
  const json validations = record.body.value("validations", json::array());
  if (validations.empty()) return;
  files[internal::kObservations] = internal::PrettyJson(validations);

  const json& latest = validations.back();
  files[internal::kFinding] = internal::PrettyJson(
      {{"finding", latest.value("finding", json())},
       {"validation_job_id", latest.value("job_id", "")},
       {"rollback_job_id", latest.value("rollback_job_id", "")},
       {"requested_by", latest.value("requested_by", "")},
       {"started_at", latest.value("started_at", json())},
       {"finished_at", latest.value("finished_at", json())},
       {"rule",
        "recovered only when every observation passed, each is newer than the rollback's end, and "
        "at least one is not the provider's own readiness check"}});

  // Each Prometheus check's recorded series: the query_range response bytes exactly as Prometheus
  // returned them (so their SHA-256 equals the recorded digest), the query and URL to re-run it,
  // and a chart with the threshold drawn.
  for (const json& validation : validations) {
    const std::string job_id = validation.value("job_id", "");
    for (const json& series : validation.value("metric_series", json::array())) {
      const std::string base = fmt::format("{}{}-{}", internal::kPrometheusFolder, SafeName(job_id),
                                           SafeName(StringOf(series, "check")));
      json described = series;
      described["response_file"] = base + "-query_range.json";
      described["re_run"] = fmt::format(
          "curl -G {}/api/v1/query_range --data-urlencode query={} --data-urlencode start={} "
          "--data-urlencode end={} --data-urlencode step={}",
          StringOf(series, "prometheus_url"), json(StringOf(series, "query")).dump(),
          StringOf(series, "start"), StringOf(series, "end"), series.value("step_seconds", 0));
      auto body = record.series_bodies.find(StringOf(series, "response_sha256"));
      if (body == record.series_bodies.end()) {
        described["response_file"] = nullptr;
        files[base + ".json"] = internal::PrettyJson(described);
        continue;
      }
      files[base + "-query_range.json"] = body->second;
      files[base + ".json"] = internal::PrettyJson(described);

      std::optional<double> threshold;
      const std::string condition = StringOf(series, "condition");
      if (const size_t space = condition.find(' '); space != std::string::npos) {
        try {
          threshold = std::stod(condition.substr(space + 1));
        } catch (const std::exception&) {
          threshold.reset();
        }
      }
      json chart_input = {{"check", StringOf(series, "check")},
                          {"query", StringOf(series, "query")},
                          {"raw_response", body->second}};
      if (threshold) chart_input["threshold"] = *threshold;
      if (auto svg = ChartOf(record, chart_input))
        AddChart(record.id, base, *std::move(svg), files);
    }
  }

  // Each Prometheus observation as recorded.
  for (const json& validation : validations) {
    const std::string job_id = validation.value("job_id", "");
    const json observations = validation.value("observations", json::array());
    for (size_t i = 0; i < observations.size(); ++i) {
      const json& observation = observations[i];
      if (observation.value("kind", "") != "prometheus") continue;
      const std::string name =
          fmt::format("{}{}-{}-{}.json", internal::kPrometheusFolder, SafeName(job_id), i,
                      SafeName(observation.value("check", "")));
      files[name] = internal::PrettyJson(observation);
      if (auto svg = ChartOf(record, observation)) {
        AddChart(record.id, name.substr(0, name.size() - 5), *std::move(svg), files);
      }
    }
  }
}

void AddFollowUpFiles(const IncidentRecord& record, BundleFiles& files) {
  const std::string review = StringOf(record.body, "review_markdown");
  if (!review.empty()) {
    files[internal::kReview] = ReviewForBundle(review, StringOf(record.review, "owner"),
                                               StringOf(record.review, "status"));
  }
  files[internal::kActionItems] =
      internal::PrettyJson({{"incident", record.id},
                            {"action_items", record.body.value("action_items", json::array())},
                            {"no_action_reason", StringOf(record.body, "no_action_reason")}});
}

void AddLedgerFiles(const LedgerSelection& selection, const ledger::Signer& signer,
                    BundleFiles& files) {
  std::string entries;
  json proofs = json::array();
  for (size_t i = 0; i < selection.entries.size(); ++i) {
    const ledger::StoredEntry& row = selection.entries[i];
    entries += row.encoded + "\n";
    json path = json::array();
    for (const ledger::Hash& hash : selection.proofs[i]) path.push_back(ledger::ToHex(hash));
    proofs.push_back(
        {{"sequence", row.sequence}, {"leaf_hash", ledger::ToHex(row.leaf_hash)}, {"proof", path}});
  }
  files[internal::kEntries] = entries;
  files[internal::kProofs] =
      internal::PrettyJson({{"tree_size", selection.checkpoint.tree_size},
                            {"root", ledger::ToHex(selection.checkpoint.root)},
                            {"entries", proofs}});
  files[internal::kCheckpoint] = internal::PrettyJson(selection.checkpoint.ToJson());
  files[internal::kSigningKey] = signer.public_key().pem();
}

core::Result<std::string> ManifestBytes(const IncidentRecord& record,
                                        const LedgerSelection& selection,
                                        const ledger::Signer& signer, const BundleFiles& files) {
  json listed = json::array();
  for (const auto& [path, content] : files) {
    listed.push_back({{"path", path},
                      {"sha256", ledger::ToHex(ledger::Sha256(content))},
                      {"size", content.size()}});
  }
  const json manifest{{"format", kBundleFormat},
                      {"incident", record.id},
                      {"checkpoint", selection.checkpoint.ToJson()},
                      {"signing_key_id", signer.public_key().key_id()},
                      {"files", listed}};
  return ledger::CanonicalJson(manifest);
}

}  // namespace

namespace internal {

core::Result<IncidentFiles> BuildIncidentFiles(store::Store& store, std::string_view incident_id,
                                               const ledger::Signer& signer) {
  auto record = ReadIncident(store, incident_id);
  if (!record) return std::unexpected(record.error());
  auto selection = SelectLedger(store, *record);
  if (!selection) return std::unexpected(selection.error());
  if (!selection->key_pems.contains(signer.public_key().key_id())) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the evidence signing key {} is not introduced in the ledger; sign "
                           "with the server's ledger key",
                           signer.public_key().key_id());
  }

  BundleFiles files;
  files[kIncident] = PrettyJson(record->body);
  files[kDecision] = PrettyJson(DecisionFile(*record, *selection));
  AddRollbackFiles(*record, files);
  AddValidationFiles(*record, files);
  AddFollowUpFiles(*record, files);
  AddLedgerFiles(*selection, signer, files);
  auto report = RenderReport(files, AssessEvidenceItems(files));
  if (!report) return std::unexpected(report.error());
  files[kReport] = std::move(*report);

  auto manifest = ManifestBytes(*record, *selection, signer, files);
  if (!manifest) return std::unexpected(manifest.error());
  const std::string signature = signer.SignBase64(*manifest) + "\n";

  // The manifest goes first so a reader streaming the archive meets it before the files.
  IncidentFiles out{.checkpoint = selection->checkpoint, .entries = selection->entries.size()};
  out.ordered.push_back({kManifest, *manifest});
  out.ordered.push_back({kManifestSignature, signature});
  for (auto& [path, content] : files) out.ordered.push_back({path, std::move(content)});
  return out;
}

int64_t ArchiveTime(const ledger::Checkpoint& checkpoint) {
  return std::chrono::duration_cast<std::chrono::seconds>(checkpoint.time.time_since_epoch())
      .count();
}

}  // namespace internal

core::Result<std::string> ExportIncidentBundle(store::Store& store, std::string_view incident_id,
                                               const ledger::Signer& signer) {
  auto built = internal::BuildIncidentFiles(store, incident_id, signer);
  if (!built) return std::unexpected(built.error());
  auto archive = WriteTarGz(built->ordered, internal::ArchiveTime(built->checkpoint));
  if (archive) {
    spdlog::info(
        "component=evidence incident={} event=bundle_exported files={} entries={} "
        "tree_size={} bytes={}",
        incident_id, built->ordered.size(), built->entries, built->checkpoint.tree_size,
        archive->size());
  }
  return archive;
}

namespace internal {

std::string PrettyJson(const nlohmann::json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string CompactJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json ParseFile(const BundleFiles& files, std::string_view path) {
  auto it = files.find(path);
  if (it == files.end()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(it->second, nullptr, false);
}

}  // namespace internal
}  // namespace backout::evidence
