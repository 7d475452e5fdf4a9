#include "ledger/entry.h"

#include <algorithm>
#include <array>
#include <string>

#include "ledger/canonical.h"

namespace backout::ledger {
namespace {

using core::ErrorCode;
using core::MakeError;

constexpr std::array<std::string_view, 7> kFields = {
    "action", "actor", "change", "change_digest", "sequence", "subject", "time"};

core::Result<Hash> ChangeDigest(const nlohmann::json& change) {
  auto canonical = CanonicalJson(change);
  if (!canonical) return std::unexpected(canonical.error().WithContext("change"));
  return Sha256(*canonical);
}

std::unexpected<core::Error> InvalidField(std::string_view field, std::string_view problem) {
  return MakeError(ErrorCode::kInvalidArgument, "invalid ledger entry: field '{}' {}", field,
                   problem);
}

core::Result<std::string> StringField(const nlohmann::json& object, std::string_view field) {
  const auto& value = object.at(std::string(field));
  if (!value.is_string()) return InvalidField(field, "must be a string");
  return value.get<std::string>();
}

// The first byte of a leaf's hashed bytes, as in LeafHash (RFC 6962).
constexpr char kLeafPrefix = 0x00;

// An encoded entry without its sequence and time, which come between and after these parts.
struct EncodedParts {
  std::string head;    // from '{' through "sequence":
  std::string middle;  // from ,"subject": through "time":
};

// Encodes the members that precede and follow the sequence. The change is canonicalized once, and
// its text is both hashed and placed in the entry, so a large change is not copied or encoded
// twice. Members are written in RFC 8785 order, which for these ASCII names is byte order.
// `entry_name` starts each error, such as "ledger entry 7".
core::Result<EncodedParts> EncodeParts(std::string_view actor, std::string_view action,
                                       std::string_view subject, const nlohmann::json& change,
                                       std::string_view entry_name) {
  if (action.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} has an empty action; name the verb, such as 'incident.opened'",
                     entry_name);
  }
  const std::string context = fmt::format("{} ({})", entry_name, action);
  if (!change.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: change must be a JSON object, got {}",
                     context, change.type_name());
  }
  auto change_text = CanonicalJson(change);
  if (!change_text) {
    return std::unexpected(change_text.error().WithContext("change").WithContext(context));
  }
  // Writes `separator`, the quoted name, ':' and the value's canonical text to `out`.
  auto append_member = [&](std::string& out, std::string_view separator, std::string_view name,
                           const nlohmann::json& value) -> core::Result<void> {
    auto text = CanonicalJson(value);
    if (!text) return std::unexpected(text.error().WithContext(name).WithContext(context));
    out += separator;
    out += '"';
    out += name;
    out += "\":";
    out += *text;
    return {};
  };
  EncodedParts parts;
  if (auto added = append_member(parts.head, "{", "action", action); !added) {
    return std::unexpected(added.error());
  }
  if (auto added = append_member(parts.head, ",", "actor", actor); !added) {
    return std::unexpected(added.error());
  }
  parts.head += ",\"change\":";
  parts.head += *change_text;
  parts.head += ",\"change_digest\":\"";
  parts.head += ToHex(Sha256(*change_text));
  parts.head += "\",\"sequence\":";
  if (auto added = append_member(parts.middle, ",", "subject", subject); !added) {
    return std::unexpected(added.error());
  }
  parts.middle += ",\"time\":";
  return parts;
}

// Encodes the rest of an entry after EncodeParts' head: the sequence, `middle` and the time.
core::Result<std::string> EncodeTail(uint64_t sequence, core::Time time, std::string_view middle,
                                     std::string_view action) {
  auto sequence_text = CanonicalJson(sequence);
  if (!sequence_text) {
    return std::unexpected(sequence_text.error()
                               .WithContext("sequence")
                               .WithContext(fmt::format("ledger entry {} ({})", sequence, action)));
  }
  std::string tail = std::move(*sequence_text);
  tail += middle;
  // FormatTime writes only digits, hyphens, colons, a point, T and Z, which canonical JSON copies
  // unescaped.
  tail += '"';
  tail += core::FormatTime(time);
  tail += "\"}";
  return tail;
}

}  // namespace

core::Result<std::string> EncodeEntry(const Entry& entry) {
  auto parts = EncodeParts(entry.actor, entry.action, entry.subject, entry.change,
                           fmt::format("ledger entry {}", entry.sequence));
  if (!parts) return std::unexpected(parts.error());
  std::string encoded = std::move(parts->head);
  auto tail = EncodeTail(entry.sequence, entry.time, parts->middle, entry.action);
  if (!tail) return std::unexpected(tail.error());
  encoded += *tail;
  return encoded;
}

core::Result<PreparedEntry> PrepareEntry(std::string_view actor, std::string_view action,
                                         std::string_view subject, const nlohmann::json& change) {
  auto parts = EncodeParts(actor, action, subject, change, "ledger entry");
  if (!parts) return std::unexpected(parts.error());
  PreparedEntry prepared;
  prepared.action_ = std::string(action);
  prepared.head_ = std::move(parts->head);
  prepared.middle_ = std::move(parts->middle);
  prepared.leaf_hash_.Update(std::string_view(&kLeafPrefix, 1));
  prepared.leaf_hash_.Update(prepared.head_);
  return prepared;
}

core::Result<EncodedEntry> PreparedEntry::Encode(uint64_t sequence, core::Time time) const {
  auto tail = EncodeTail(sequence, time, middle_, action_);
  if (!tail) return std::unexpected(tail.error());
  Sha256Hasher leaf_hash = leaf_hash_;
  leaf_hash.Update(*tail);
  EncodedEntry encoded{.bytes = {}, .leaf_hash = leaf_hash.Digest()};
  encoded.bytes.reserve(head_.size() + tail->size());
  encoded.bytes += head_;
  encoded.bytes += *tail;
  return encoded;
}

core::Result<Entry> DecodeEntry(std::string_view encoded) {
  // Parse.
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(encoded);
  } catch (const nlohmann::json::parse_error& error) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid ledger entry: not JSON: {}",
                     error.what());
  }
  if (!object.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid ledger entry: expected a JSON object, got {}", object.type_name());
  }

  // Exactly the documented fields, each with its type.
  for (std::string_view field : kFields) {
    if (!object.contains(std::string(field))) return InvalidField(field, "is missing");
  }
  for (const auto& [name, value] : object.items()) {
    if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid ledger entry: unknown field '{}'; an entry has exactly the fields "
                       "action, actor, change, change_digest, sequence, subject and time",
                       name);
    }
  }
  Entry entry;
  const auto& sequence = object.at("sequence");
  if (!sequence.is_number_unsigned()) {
    return InvalidField("sequence", "must be a non-negative integer");
  }
  entry.sequence = sequence.get<uint64_t>();
  auto actor = StringField(object, "actor");
  if (!actor) return std::unexpected(actor.error());
  entry.actor = std::move(*actor);
  auto action = StringField(object, "action");
  if (!action) return std::unexpected(action.error());
  entry.action = std::move(*action);
  auto subject = StringField(object, "subject");
  if (!subject) return std::unexpected(subject.error());
  entry.subject = std::move(*subject);
  if (!object.at("change").is_object()) return InvalidField("change", "must be a JSON object");
  entry.change = object.at("change");

  // Time: RFC 3339 UTC with exactly six fractional digits and 'Z'.
  auto time_text = StringField(object, "time");
  if (!time_text) return std::unexpected(time_text.error());
  auto time = core::ParseTime(*time_text);
  if (!time || core::FormatTime(*time) != *time_text) {
    return InvalidField("time", fmt::format("'{}' is not RFC 3339 UTC with six fractional "
                                            "digits and 'Z', such as 2026-12-04T17:05:41.000123Z",
                                            *time_text));
  }
  entry.time = *time;

  // The change digest covers the change.
  auto digest_text = StringField(object, "change_digest");
  if (!digest_text) return std::unexpected(digest_text.error());
  auto recorded_digest = HashFromHex(*digest_text);
  if (!recorded_digest) return InvalidField("change_digest", recorded_digest.error().message);
  auto actual_digest = ChangeDigest(entry.change);
  if (!actual_digest) return std::unexpected(actual_digest.error());
  if (*recorded_digest != *actual_digest) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid ledger entry {}: change_digest mismatch: expected {} (recorded), "
                     "actual {} (SHA-256 of the canonical change)",
                     entry.sequence, ToHex(*recorded_digest), ToHex(*actual_digest));
  }

  // One entry has one encoding, so the bytes must be exactly what EncodeEntry writes. The fields
  // were checked above, so the canonical form of the parsed object is that encoding.
  auto canonical = CanonicalJson(object);
  if (!canonical) return std::unexpected(canonical.error());
  if (*canonical != encoded || *digest_text != ToHex(*recorded_digest)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid ledger entry {}: the bytes are not its canonical JSON form "
                     "(RFC 8785: sorted members, no whitespace, lower-case hex change_digest)",
                     entry.sequence);
  }
  return entry;
}

}  // namespace backout::ledger
