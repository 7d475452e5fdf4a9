#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/time.h"
#include "ledger/checkpoint.h"
#include "store/store.h"

// Evidence bundles: one incident's record, decision, rollback transcript, validation, review and
// ledger proofs in one deterministic tar.gz that an auditor checks offline. docs/evidence.md
// specifies the format.
namespace backout::evidence {

inline constexpr std::string_view kBundleFormat = "backout-evidence/v1";

// The four items an auditor samples for each change under SOC 2 CC8.1, applied to a rollback.
struct EvidenceItem {
  int number = 0;    // 1 to 4
  std::string name;  // "authorization", "independent approval", "recovery validation", …
  bool present = false;
  std::string detail;  // what was found, or what is missing
};

// Files of a bundle by path.
using BundleFiles = std::map<std::string, std::string, std::less<>>;

// Judges the four evidence items from a bundle's files (decision.json, rollback/, validation/).
std::vector<EvidenceItem> AssessEvidenceItems(const BundleFiles& files);

// Builds the evidence bundle of incident `incident_id` as tar.gz bytes. The bundle proves the
// incident's ledger entries (with those of its action items and changes), the policy entries in
// force at its decisions and every key entry against the earliest stored checkpoint covering them
// all. Exporting again therefore gives the same bytes until the incident or the key changes.
// `signer` signs manifest.json and must be the key in force in the ledger. Fails with kNotFound for
// an unknown incident and kCorruption when the stored ledger does not match its checkpoint.
core::Result<std::string> ExportIncidentBundle(store::Store& store, std::string_view incident_id,
                                               const ledger::Signer& signer);

struct BundleVerifyOptions {
  // When set, entry 0 of the bundle's ledger entries must introduce this key. Otherwise the key the
  // bundle introduces itself is trusted, which catches edits but not a bundle forged whole.
  std::optional<ledger::PublicKey> trusted_key;
};

struct BundleReport {
  std::string incident_id;
  size_t files = 0;           // files listed in the manifest
  size_t ledger_entries = 0;  // entries proven against the checkpoint
  ledger::Checkpoint checkpoint;
  std::string signing_key_id;
  bool trusted_key_matched = false;
  std::vector<EvidenceItem> items;
};

// Verifies a bundle offline: the manifest signature, every file's SHA-256 and size against the
// manifest, the key entries' chain of signatures, the checkpoint signature, and each ledger
// entry's inclusion proof. Fails with kCorruption naming the file at fault. A bundle that
// verifies may still lack evidence items: see BundleReport::items.
core::Result<BundleReport> VerifyBundle(std::string_view tar_gz,
                                        const BundleVerifyOptions& options);

// The `format` of a bundle's manifest.json, such as kBundleFormat or kPeriodBundleFormat, read
// without verifying anything, so a caller can choose the verifier. kCorruption when the archive
// or its manifest cannot be read.
core::Result<std::string> BundleFormatOf(std::string_view tar_gz);

// ---- Period bundles -------------------------------------------------------------------------

inline constexpr std::string_view kPeriodBundleFormat = "backout-evidence-period/v1";

// Builds the evidence of the period [from, to) as tar.gz bytes: the bundle of every incident
// opened in the period or with a rollback requested in it (under incidents/<ID>/, each a complete
// incident bundle), the population of the period (BuildPopulation) as CSV and JSON, the
// "policy.loaded" ledger entries in force during the period (the last one at or before `from`
// and each one inside the period) with their policies, rosters and provider bindings, and a
// consistency proof from the last checkpoint at or before `from` to the first at or after `to`.
// When no checkpoint is that late yet, the latest stored one ends the proof and the manifest states
// the period is not closed. docs/evidence.md specifies the format. Exporting again gives the same
// bytes until a record of the period or the key changes. `signer` must be the key in force.
// Fails with kInvalidArgument when `from` is not before `to`, with kFailedPrecondition when the
// key that signs was introduced after the period's end checkpoint, and with kCorruption when the
// stored ledger does not match its checkpoints.
core::Result<std::string> ExportPeriodBundle(store::Store& store, core::Time from, core::Time to,
                                             const ledger::Signer& signer);

struct PeriodReport {
  core::Time from;
  core::Time to;
  size_t files = 0;  // files listed in the top-level manifest
  std::vector<BundleReport> incidents;
  size_t population_rows = 0;
  size_t policy_loads = 0;    // config loads in force during the period
  size_t ledger_entries = 0;  // top-level entries proven against the end checkpoint
  // The proof's ends. A missing start means the period begins before the first checkpoint, and
  // the proof then starts from the empty log.
  std::optional<ledger::Checkpoint> start_checkpoint;
  ledger::Checkpoint end_checkpoint;
  bool period_closed = false;  // the end checkpoint is at or after `to`
  std::string signing_key_id;
  bool trusted_key_matched = false;
};

// Verifies a period bundle offline: everything VerifyBundle checks for the top-level manifest and
// ledger files, the start checkpoint's signature, the consistency proof from the start to the end
// checkpoint, each incident folder as a bundle of its own, and that population.csv and
// config/policy-history.json match population.json and the ledger entries. Fails with kCorruption
// naming the file at fault.
core::Result<PeriodReport> VerifyPeriodBundle(std::string_view tar_gz,
                                              const BundleVerifyOptions& options);

}  // namespace backout::evidence
