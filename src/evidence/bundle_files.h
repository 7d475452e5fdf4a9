#pragma once

// Helpers shared by the bundle's writer, verifier and report. Not part of the module's interface.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "ledger/entry.h"

namespace backout::evidence::internal {

inline constexpr char kManifest[] = "manifest.json";
inline constexpr char kManifestSignature[] = "manifest.sig";
inline constexpr char kIncident[] = "incident.json";
inline constexpr char kDecision[] = "decision.json";
inline constexpr char kTranscript[] = "rollback/transcript.jsonl";
inline constexpr char kToolRecord[] = "rollback/tool-record.json";
inline constexpr char kObservations[] = "validation/observations.json";
inline constexpr char kFinding[] = "validation/finding.json";
inline constexpr char kPrometheusFolder[] = "validation/prometheus/";
inline constexpr char kReview[] = "review.md";
inline constexpr char kActionItems[] = "action-items.json";
inline constexpr char kCheckpoint[] = "ledger/checkpoint.json";
inline constexpr char kEntries[] = "ledger/entries.jsonl";
inline constexpr char kProofs[] = "ledger/proofs.json";
inline constexpr char kSigningKey[] = "ledger/signing-key.pem";
inline constexpr char kReport[] = "report.html";

// Files of a period bundle besides the manifest and the ledger files above.
inline constexpr char kIncidentsFolder[] = "incidents/";
inline constexpr char kPopulationJson[] = "population.json";
inline constexpr char kPopulationCsv[] = "population.csv";
inline constexpr char kPolicyHistory[] = "config/policy-history.json";
inline constexpr char kStartCheckpoint[] = "ledger/start-checkpoint.json";
inline constexpr char kConsistency[] = "ledger/consistency.json";
inline constexpr char kIncidentConsistency[] = "ledger/incident-consistency.json";

// Pretty JSON with sorted keys and a final newline. Invalid UTF-8 is replaced rather than thrown,
// because stored transcripts may carry a tool's raw bytes.
std::string PrettyJson(const nlohmann::json& value);

// One line of JSON Lines, without the newline.
std::string CompactJson(const nlohmann::json& value);

// Parses a bundle file as JSON; a missing or unparsable file gives a discarded value.
nlohmann::json ParseFile(const BundleFiles& files, std::string_view path);

// One incident's bundle as files, before they are packed.
struct IncidentFiles {
  std::vector<ArchiveFile> ordered;  // manifest.json, manifest.sig, then the rest sorted by path
  ledger::Checkpoint checkpoint;     // the checkpoint the ledger entries are proven against
  size_t entries = 0;                // ledger entries in the bundle
};

// Builds the files of incident `incident_id`'s bundle, as ExportIncidentBundle describes.
core::Result<IncidentFiles> BuildIncidentFiles(store::Store& store, std::string_view incident_id,
                                               const ledger::Signer& signer);

// The modification time of every archive entry: the checkpoint's time in whole seconds.
int64_t ArchiveTime(const ledger::Checkpoint& checkpoint);

// One line of ledger/entries.jsonl: the raw bytes and the decoded entry.
struct BundleEntry {
  std::string line;
  ledger::Entry entry;
};

// The keys of a bundle's key entries, oldest first, each with the tree size from which it signs.
using KeyChainItems = std::vector<std::pair<uint64_t, ledger::PublicKey>>;

// Results of the checks shared by both bundle formats.
struct SignedFiles {
  nlohmann::json manifest;
  std::string signing_key_id;
  size_t files = 0;  // files listed in the manifest
  ledger::Checkpoint checkpoint;
  KeyChainItems keys;
  std::vector<BundleEntry> entries;
};

// Unpacks a bundle; kCorruption when it is not a readable tar.gz.
core::Result<BundleFiles> ReadBundleFiles(std::string_view tar_gz);

// The key that signs checkpoints of `tree_size` entries, or null when none does.
const ledger::PublicKey* KeyInForce(const KeyChainItems& keys, uint64_t tree_size);

// Checks a bundle's manifest (canonical JSON of `format`), its signature by a key that
// ledger/entries.jsonl introduces, every listed file's SHA-256 and size, the key chain,
// ledger/checkpoint.json against the manifest's checkpoint and its signature, each entry's
// inclusion proof in ledger/proofs.json, and ledger/signing-key.pem when present. Fails with
// kCorruption naming the file at fault.
core::Result<SignedFiles> VerifySignedFiles(const BundleFiles& files, std::string_view format,
                                            const BundleVerifyOptions& options);

// Verifies an incident bundle's files, as VerifyBundle describes.
core::Result<BundleReport> VerifyIncidentFiles(const BundleFiles& files,
                                               const BundleVerifyOptions& options);

// config/policy-history.json of a period bundle: one item per "policy.loaded" entry among
// `entries`, in their order, with the policy, the roster and the provider bindings it recorded.
nlohmann::json PolicyHistory(const std::vector<ledger::Entry>& entries);

// The authorization of one rollback. A non-emergency rollback is judged by the decision in force at
// its request (the latest go or no-go made at or before it, retroactive approvals aside), which
// must be a go whose approved digest equals the digest the rollback ran. Decisions made after the
// request do not change the judgement. A break-glass rollback is judged by the first retroactive
// approval at or after its request by a lead other than its executor.
struct RollbackAuthorization {
  std::string job_id;
  bool authorized = false;
  nlohmann::json decision;  // the go in force or the retroactive approval; null when there is none
  bool approved_digest_matches_plan = false;  // for a non-emergency rollback
  std::string detail;                         // what authorized the rollback, or what is missing
};

// Judges each item of `rollbacks` (the incident's rollbacks, or the records of
// rollback/tool-record.json) against `decisions`, every decision of the incident in order.
std::vector<RollbackAuthorization> AuthorizeRollbacks(const nlohmann::json& decisions,
                                                      const nlohmann::json& rollbacks);

// The go and no-go decisions made after the last rollback's request, in order; empty when there is
// no rollback.
nlohmann::json DecisionsAfterLastRollback(const nlohmann::json& decisions,
                                          const nlohmann::json& rollbacks);

// Renders report.html from the other files. Fails only when cmark-gfm, which renders the review,
// cannot be loaded.
core::Result<std::string> RenderReport(const BundleFiles& files,
                                       const std::vector<EvidenceItem>& items);

}  // namespace backout::evidence::internal
