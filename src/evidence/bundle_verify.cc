// Offline verification of an evidence bundle.
#include <set>

#include <fmt/format.h>

#include "evidence/archive.h"
#include "evidence/bundle.h"
#include "evidence/bundle_files.h"
#include "ledger/canonical.h"
#include "ledger/entry.h"
#include "ledger/hash.h"
#include "ledger/merkle.h"

namespace backout::evidence {
namespace {

using nlohmann::json;

std::unexpected<core::Error> Corrupt(std::string_view file, std::string message) {
  if (file.empty()) return std::unexpected(core::Error{core::ErrorCode::kCorruption, message});
  return std::unexpected(
      core::Error{core::ErrorCode::kCorruption, fmt::format("{}: {}", file, message)});
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// The manifest, parsed and checked to be exactly its canonical form.
struct Manifest {
  json parsed;
  std::string signing_key_id;
  ledger::Checkpoint checkpoint;
  std::map<std::string, std::pair<std::string, uint64_t>> files;  // path -> sha256, size
};

core::Result<Manifest> ParseManifest(const std::string& bytes, std::string_view format) {
  const json parsed = json::parse(bytes, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Corrupt(internal::kManifest, "not valid JSON");
  }
  auto canonical = ledger::CanonicalJson(parsed);
  if (!canonical || *canonical != bytes) {
    return Corrupt(internal::kManifest, "not in canonical JSON form (RFC 8785)");
  }
  if (parsed.value("format", "") != format) {
    return Corrupt(internal::kManifest, fmt::format("format is '{}', expected '{}'",
                                                    parsed.value("format", ""), format));
  }
  Manifest manifest;
  manifest.parsed = parsed;
  manifest.signing_key_id = parsed.value("signing_key_id", "");
  auto checkpoint = ledger::Checkpoint::FromJson(parsed.value("checkpoint", json()));
  if (!checkpoint) return Corrupt(internal::kManifest, checkpoint.error().message);
  manifest.checkpoint = *checkpoint;
  for (const json& file : parsed.value("files", json::array())) {
    if (!file.is_object() || !file.value("path", json()).is_string() ||
        !file.value("sha256", json()).is_string() || !file.value("size", json()).is_number()) {
      return Corrupt(internal::kManifest, "a files[] item lacks path, sha256 or size");
    }
    manifest.files[file["path"].get<std::string>()] = {file["sha256"].get<std::string>(),
                                                       file["size"].get<uint64_t>()};
  }
  return manifest;
}

// Files whose bytes differ from the manifest, or that one lists and the other lacks.
std::vector<std::string> DigestMismatches(const Manifest& manifest, const BundleFiles& files) {
  std::vector<std::string> problems;
  for (const auto& [path, expected] : manifest.files) {
    auto it = files.find(path);
    if (it == files.end()) {
      problems.push_back(fmt::format("{}: listed in the manifest but missing", path));
      continue;
    }
    const std::string actual = ledger::ToHex(ledger::Sha256(it->second));
    if (actual != expected.first || it->second.size() != expected.second) {
      problems.push_back(
          fmt::format("{}: SHA-256 is {} ({} bytes), the manifest says {} ({} "
                      "bytes); the file was changed",
                      path, actual, it->second.size(), expected.first, expected.second));
    }
  }
  for (const auto& [path, content] : files) {
    if (path == internal::kManifest || path == internal::kManifestSignature) continue;
    if (!manifest.files.contains(path)) {
      problems.push_back(fmt::format("{}: not listed in the manifest; the file was added", path));
    }
  }
  return problems;
}

using internal::BundleEntry;
using internal::KeyChainItems;

core::Result<std::vector<BundleEntry>> ReadEntries(const BundleFiles& files) {
  auto it = files.find(internal::kEntries);
  if (it == files.end()) return Corrupt(internal::kEntries, "missing");
  std::vector<BundleEntry> entries;
  const std::vector<std::string> lines = Lines(it->second);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto entry = ledger::DecodeEntry(lines[i]);
    if (!entry) {
      return Corrupt(internal::kEntries, fmt::format("line {} is not a valid ledger entry: {}",
                                                     i + 1, entry.error().message));
    }
    auto encoded = ledger::EncodeEntry(*entry);
    if (!encoded || *encoded != lines[i]) {
      return Corrupt(internal::kEntries,
                     fmt::format("line {} is not the canonical encoding of its entry", i + 1));
    }
    entries.push_back({lines[i], *std::move(entry)});
  }
  return entries;
}

// Follows the key entries: entry 0 introduces a key, each rotation is signed by the key before.
// Returns the keys in order with the sequence from which each is in force.
core::Result<KeyChainItems> KeyChain(const std::vector<BundleEntry>& entries,
                                     const BundleVerifyOptions& options) {
  KeyChainItems keys;
  for (const BundleEntry& item : entries) {
    const ledger::Entry& entry = item.entry;
    const bool introduced = entry.action == "ledger.key_introduced";
    if (!introduced && entry.action != "ledger.key_rotated") continue;
    const std::string where = fmt::format("entry {}", entry.sequence);
    if (introduced != (entry.sequence == 0) || introduced != keys.empty()) {
      return Corrupt(
          internal::kEntries,
          fmt::format("{}: only entry 0 may introduce a key, and it must come first", where));
    }
    auto key = ledger::PublicKey::FromPem(entry.change.value("public_key", ""));
    if (!key || key->key_id() != entry.change.value("key_id", "")) {
      return Corrupt(internal::kEntries,
                     fmt::format("{}: the key's PEM does not match its key_id", where));
    }
    if (!introduced) {
      const ledger::PublicKey& previous = keys.back().second;
      if (entry.change.value("previous_key_id", "") != previous.key_id() ||
          !previous.Verify(entry.change.value("public_key", ""),
                           entry.change.value("signature", ""))) {
        return Corrupt(internal::kEntries,
                       fmt::format("{}: the rotation is not signed by the key in force {}", where,
                                   previous.key_id()));
      }
    }
    keys.emplace_back(entry.sequence + 1, *key);
  }
  if (keys.empty()) {
    return Corrupt(internal::kEntries, "entry 0, which introduces the signing key, is missing");
  }
  if (options.trusted_key && keys.front().second.key_id() != options.trusted_key->key_id()) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "{}: entry 0 introduces key {}, but --public-key is key {}; the bundle "
                           "was not signed by the ledger you trust",
                           internal::kEntries, keys.front().second.key_id(),
                           options.trusted_key->key_id());
  }
  return keys;
}

core::Result<void> CheckProofs(const std::vector<BundleEntry>& entries,
                               const ledger::Checkpoint& checkpoint, const BundleFiles& files) {
  const json proofs = internal::ParseFile(files, internal::kProofs);
  if (proofs.is_discarded() || !proofs.is_object()) {
    return Corrupt(internal::kProofs, "missing or not valid JSON");
  }
  const json list = proofs.value("entries", json::array());
  if (list.size() != entries.size()) {
    return Corrupt(internal::kProofs,
                   fmt::format("has {} proofs for {} entries", list.size(), entries.size()));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const ledger::Entry& entry = entries[i].entry;
    const json& item = list[i];
    if (item.value("sequence", json()) != entry.sequence) {
      return Corrupt(internal::kProofs, fmt::format("proof {} is for sequence {}, line {} of {} "
                                                    "is entry {}",
                                                    i, item.value("sequence", json()).dump(), i + 1,
                                                    internal::kEntries, entry.sequence));
    }
    std::vector<ledger::Hash> path;
    for (const json& hex : item.value("proof", json::array())) {
      auto hash = ledger::HashFromHex(hex.is_string() ? hex.get<std::string>() : "");
      if (!hash) return Corrupt(internal::kProofs, hash.error().message);
      path.push_back(*hash);
    }
    const ledger::Hash leaf = ledger::LeafHash(entries[i].line);
    if (!ledger::VerifyInclusion(entry.sequence, checkpoint.tree_size, leaf, path,
                                 checkpoint.root)) {
      return core::MakeError(core::ErrorCode::kCorruption,
                             "{}: entry {} (line {}) is not in the checkpoint's tree of {} "
                             "entries with root {}: its inclusion proof in {} fails",
                             internal::kEntries, entry.sequence, i + 1, checkpoint.tree_size,
                             ledger::ToHex(checkpoint.root), internal::kProofs);
    }
  }
  return {};
}

}  // namespace

namespace internal {

core::Result<BundleFiles> ReadBundleFiles(std::string_view tar_gz) {
  auto archive = ReadTarGz(tar_gz);
  if (!archive) {
    return core::MakeError(core::ErrorCode::kCorruption, "the bundle cannot be read: {}",
                           archive.error().message);
  }
  BundleFiles files;
  for (ArchiveFile& file : *archive) files[file.path] = std::move(file.content);
  return files;
}

const ledger::PublicKey* KeyInForce(const KeyChainItems& keys, uint64_t tree_size) {
  const ledger::PublicKey* in_force = nullptr;
  for (const auto& [from, key] : keys) {
    if (from <= tree_size) in_force = &key;
  }
  return in_force;
}

core::Result<SignedFiles> VerifySignedFiles(const BundleFiles& files, std::string_view format,
                                            const BundleVerifyOptions& options) {
  for (const char* required : {kManifest, kManifestSignature}) {
    if (!files.contains(required)) return Corrupt(required, "missing from the bundle");
  }

  // Step 1: the manifest and the digests it lists. A digest mismatch is reported after the
  // signature check, so a change to the manifest itself is blamed on the manifest.
  const std::string& manifest_bytes = files.find(kManifest)->second;
  auto manifest = ParseManifest(manifest_bytes, format);
  if (!manifest) return std::unexpected(manifest.error());
  const std::vector<std::string> mismatches = DigestMismatches(*manifest, files);
  auto first_mismatch_of = [&](std::string_view path) -> const std::string* {
    for (const std::string& problem : mismatches) {
      if (problem.starts_with(path)) return &problem;
    }
    return nullptr;
  };

  // Step 2: the signing key's chain from the ledger entries, and the manifest signature.
  auto entries = ReadEntries(files);
  if (!entries) {
    if (auto* problem = first_mismatch_of(kEntries)) return Corrupt("", *problem);
    return std::unexpected(entries.error());
  }
  auto keys = KeyChain(*entries, options);
  if (!keys) {
    if (auto* problem = first_mismatch_of(kEntries)) return Corrupt("", *problem);
    return std::unexpected(keys.error());
  }
  const ledger::PublicKey* signing_key = nullptr;
  for (const auto& [from, key] : *keys) {
    if (key.key_id() == manifest->signing_key_id) signing_key = &key;
  }
  if (signing_key == nullptr) {
    return Corrupt(kManifest, fmt::format("names signing key {}, which no key entry of {} "
                                          "introduces",
                                          manifest->signing_key_id, kEntries));
  }
  if (!signing_key->Verify(manifest_bytes, Trimmed(files.find(kManifestSignature)->second))) {
    return core::MakeError(core::ErrorCode::kCorruption,
                           "{}: the Ed25519 signature does not verify over {} with key {}: "
                           "{} or {} was changed",
                           kManifestSignature, kManifest, signing_key->key_id(), kManifest,
                           kManifestSignature);
  }
  if (!mismatches.empty()) return Corrupt("", mismatches.front());

  // Step 3: the checkpoint, signed by the key in force at its size, and each entry's proof.
  const json checkpoint_json = ParseFile(files, kCheckpoint);
  auto checkpoint = ledger::Checkpoint::FromJson(checkpoint_json);
  if (checkpoint_json.is_discarded() || !checkpoint) {
    return Corrupt(kCheckpoint, "missing or not a checkpoint");
  }
  if (checkpoint->ToJson() != manifest->checkpoint.ToJson()) {
    return Corrupt(kCheckpoint, "differs from the checkpoint the manifest names");
  }
  const ledger::PublicKey* in_force = KeyInForce(*keys, checkpoint->tree_size);
  if (in_force == nullptr || !in_force->Verify(*checkpoint)) {
    return Corrupt(
        kCheckpoint,
        fmt::format("the signature does not verify with the key in force at tree size "
                    "{} ({})",
                    checkpoint->tree_size, in_force == nullptr ? "none" : in_force->key_id()));
  }
  if (auto proven = CheckProofs(*entries, *checkpoint, files); !proven) {
    return std::unexpected(proven.error());
  }

  // Step 4: the signing key file, when present.
  auto pem = files.find(kSigningKey);
  if (pem != files.end()) {
    auto key = ledger::PublicKey::FromPem(pem->second);
    if (!key || key->key_id() != manifest->signing_key_id) {
      return Corrupt(kSigningKey, "is not the key that signed the manifest");
    }
  }

  return SignedFiles{.manifest = std::move(manifest->parsed),
                     .signing_key_id = manifest->signing_key_id,
                     .files = manifest->files.size(),
                     .checkpoint = *checkpoint,
                     .keys = *std::move(keys),
                     .entries = *std::move(entries)};
}

core::Result<BundleReport> VerifyIncidentFiles(const BundleFiles& files,
                                               const BundleVerifyOptions& options) {
  auto verified = VerifySignedFiles(files, kBundleFormat, options);
  if (!verified) return std::unexpected(verified.error());

  const std::string incident_id = verified->manifest.value("incident", "");
  const json incident = ParseFile(files, kIncident);
  if (incident.is_discarded() || !incident.is_object() || incident.value("id", "") != incident_id) {
    return Corrupt(kIncident, fmt::format("is not the record of incident {}", incident_id));
  }

  BundleReport report;
  report.incident_id = incident_id;
  report.files = verified->files;
  report.ledger_entries = verified->entries.size();
  report.checkpoint = verified->checkpoint;
  report.signing_key_id = verified->signing_key_id;
  report.trusted_key_matched = options.trusted_key.has_value();
  report.items = AssessEvidenceItems(files);
  return report;
}

}  // namespace internal

core::Result<BundleReport> VerifyBundle(std::string_view tar_gz,
                                        const BundleVerifyOptions& options) {
  auto files = internal::ReadBundleFiles(tar_gz);
  if (!files) return std::unexpected(files.error());
  return internal::VerifyIncidentFiles(*files, options);
}

core::Result<std::string> BundleFormatOf(std::string_view tar_gz) {
  auto files = internal::ReadBundleFiles(tar_gz);
  if (!files) return std::unexpected(files.error());
  const json manifest = internal::ParseFile(*files, internal::kManifest);
  if (manifest.is_discarded() || !manifest.is_object() ||
      !manifest.value("format", json()).is_string()) {
    return Corrupt(internal::kManifest, "missing, not valid JSON, or without a format");
  }
  return manifest["format"].get<std::string>();
}

}  // namespace backout::evidence
