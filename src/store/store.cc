#include "store/store.h"

#include <charconv>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_internal.h"

namespace backout::store {

using core::ErrorCode;
using core::MakeError;

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kLeased:
      return "leased";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
  }
  return "unknown";
}

core::Result<JobState> ParseJobState(std::string_view name) {
  for (JobState state :
       {JobState::kQueued, JobState::kLeased, JobState::kSucceeded, JobState::kFailed}) {
    if (JobStateName(state) == name) return state;
  }
  return MakeError(ErrorCode::kCorruption,
                   "unknown job state '{}': expected queued, leased, succeeded or failed", name);
}

core::Result<int64_t> ColumnInt(const SqlRow& row, size_t column, std::string_view name) {
  if (column >= row.size() || !row[column].has_value()) {
    return MakeError(ErrorCode::kCorruption, "column {} is missing or NULL", name);
  }
  const std::string& text = *row[column];
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return MakeError(ErrorCode::kCorruption, "column {} is not an integer: '{}'", name, text);
  }
  return value;
}

core::Result<std::string> ColumnText(const SqlRow& row, size_t column, std::string_view name) {
  if (column >= row.size() || !row[column].has_value()) {
    return MakeError(ErrorCode::kCorruption, "column {} is missing or NULL", name);
  }
  return *row[column];
}

core::Result<Job> JobFromRow(const SqlRow& row) {
  auto id = ColumnInt(row, 0, "jobs.id");
  if (!id) return std::unexpected(id.error());
  auto kind = ColumnText(row, 1, "jobs.kind");
  auto subject = ColumnText(row, 2, "jobs.subject");
  auto payload = ColumnText(row, 3, "jobs.payload");
  auto state = ColumnText(row, 4, "jobs.state");
  auto attempts = ColumnInt(row, 5, "jobs.attempts");
  auto run_after = ColumnInt(row, 6, "jobs.run_after");
  auto lease_owner = ColumnText(row, 7, "jobs.lease_owner");
  auto lease_expires = ColumnInt(row, 8, "jobs.lease_expires");
  auto fencing_token = ColumnInt(row, 9, "jobs.fencing_token");
  auto last_error = ColumnText(row, 10, "jobs.last_error");
  for (const auto* column : {&kind, &subject, &payload, &state, &lease_owner, &last_error}) {
    if (!column->has_value()) return std::unexpected(column->error());
  }
  for (const auto* column : {&attempts, &run_after, &lease_expires, &fencing_token}) {
    if (!column->has_value()) return std::unexpected(column->error());
  }

  auto parsed_state = ParseJobState(*state);
  if (!parsed_state)
    return std::unexpected(parsed_state.error().WithContext(fmt::format("job {}", *id)));
  auto parsed_payload = ParseStoredJson(*payload, fmt::format("payload of job {}", *id));
  if (!parsed_payload) return std::unexpected(parsed_payload.error());

  return Job{
      .id = *id,
      .kind = std::move(*kind),
      .subject = std::move(*subject),
      .payload = std::move(*parsed_payload),
      .state = *parsed_state,
      .attempts = static_cast<int>(*attempts),
      .run_after = FromMicros(*run_after),
      .lease_owner = std::move(*lease_owner),
      .lease_expires = FromMicros(*lease_expires),
      .fencing_token = *fencing_token,
      .last_error = std::move(*last_error),
  };
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0f];
  }
  return hex;
}

core::Result<std::string> HexDecode(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return MakeError(ErrorCode::kCorruption, "hex text of {} characters has an odd length",
                     hex.size());
  }
  std::string bytes(hex.size() / 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const int high = digit(hex[2 * i]);
    const int low = digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return MakeError(ErrorCode::kCorruption, "invalid hex digit at offset {} of '{}'", 2 * i,
                       hex.substr(0, 80));
    }
    bytes[i] = static_cast<char>(high << 4 | low);
  }
  return bytes;
}

std::string RedactUrl(std::string_view url) {
  std::string redacted(url);

  // postgresql://user:password@host/…
  const size_t scheme_end = redacted.find("://");
  if (scheme_end != std::string::npos) {
    const size_t authority = scheme_end + 3;
    const size_t at = redacted.find('@', authority);
    const size_t slash = redacted.find('/', authority);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const size_t colon = redacted.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        redacted.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }

  // …?password=secret&…
  for (size_t at = redacted.find("password="); at != std::string::npos;
       at = redacted.find("password=", at + 1)) {
    const size_t value = at + std::string_view("password=").size();
    const size_t end = redacted.find_first_of("& ", value);
    redacted.replace(value, (end == std::string::npos ? redacted.size() : end) - value, "***");
  }
  return redacted;
}

namespace {

template <typename Integer>
void AppendInteger(Integer number, std::string& out) {
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), number);
  out.append(digits, end);
}

// Writes the same text as value.dump(). Objects, arrays, plain strings and integers are written
// here because dump() checks every byte of every string against a UTF-8 state machine, which was
// a third of the alert intake's instructions inside the write transaction (callgrind of
// bench/intake_bench). Everything else goes through dump().
void AppendJson(const nlohmann::json& value, std::string& out) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object: {
      out += '{';
      bool first = true;
      for (const auto& [name, member] : value.get_ref<const nlohmann::json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(name, out);
        out += ':';
        AppendJson(member, out);
      }
      out += '}';
      return;
    }
    case Type::array: {
      out += '[';
      bool first = true;
      for (const nlohmann::json& item : value.get_ref<const nlohmann::json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        AppendJson(item, out);
      }
      out += ']';
      return;
    }
    case Type::string:
      AppendJsonString(value.get_ref<const std::string&>(), out);
      return;
    case Type::number_integer:
      AppendInteger(value.get<int64_t>(), out);
      return;
    case Type::number_unsigned:
      AppendInteger(value.get<uint64_t>(), out);
      return;
    case Type::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case Type::null:
      out += "null";
      return;
    default:
      out += value.dump();
      return;
  }
}

}  // namespace

core::Result<std::string> DumpJson(const nlohmann::json& value, std::string_view what) {
  try {
    std::string text;
    // A signal body with a few labels is about 650 bytes, so it is written without regrowing.
    text.reserve(1024);
    AppendJson(value, text);
    return text;
  } catch (const nlohmann::json::exception& error) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot store {} as JSON: {}", what,
                     error.what());
  }
}

core::Result<SerializedBody> SerializeBody(const nlohmann::json& body, std::string_view what) {
  auto text = DumpJson(body, what);
  if (!text) return std::unexpected(text.error());
  return SerializedBody(std::move(*text));
}

core::Result<nlohmann::json> ParseStoredJson(std::string_view text, std::string_view what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    return MakeError(ErrorCode::kCorruption, "stored {} is not valid JSON: {}", what, error.what());
  }
}

core::Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options) {
  if (options.clock == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "opening store {}: StoreOptions.clock is required", RedactUrl(url));
  }
  if (url.starts_with("sqlite:")) {
    return SqliteStore::Open(url.substr(std::string_view("sqlite:").size()), options);
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return PostgresStore::Open(url, options);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unsupported database URL '{}': use sqlite:PATH or "
                   "postgresql://USER@HOST:PORT/DATABASE",
                   RedactUrl(url));
}

}  // namespace backout::store
