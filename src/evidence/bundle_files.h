#pragma once

// Helpers shared by the bundle's writer, verifier and report. Not part of the module's interface.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "evidence/bundle.h"

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

// Pretty JSON with sorted keys and a final newline. Invalid UTF-8 is replaced rather than thrown,
// because stored transcripts may carry a tool's raw bytes.
std::string PrettyJson(const nlohmann::json& value);

// One line of JSON Lines, without the newline.
std::string CompactJson(const nlohmann::json& value);

// Parses a bundle file as JSON; a missing or unparsable file gives a discarded value.
nlohmann::json ParseFile(const BundleFiles& files, std::string_view path);

// Renders report.html from the other files.
std::string RenderReport(const BundleFiles& files, const std::vector<EvidenceItem>& items);

}  // namespace backout::evidence::internal
