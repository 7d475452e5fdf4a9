#include "http/transcript.h"

#include <openssl/evp.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace backout::http {

namespace {

std::string FormatTime(TimePoint time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto micros = (time - seconds).count();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", seconds, micros);
}

nlohmann::json HeadersToJson(const Headers& headers) {
  nlohmann::json fields = nlohmann::json::array();
  for (const auto& [name, value] : headers) {
    fields.push_back({name, value});
  }
  return fields;
}

bool IsValidUtf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

std::string Base64(const std::string& data) {
  std::string encoded(4 * ((data.size() + 2) / 3), '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                               reinterpret_cast<const unsigned char*>(data.data()),
                               static_cast<int>(data.size()));
  encoded.resize(length);
  return encoded;
}

void PutBody(nlohmann::json& object, const std::string& key, const std::string& body) {
  if (IsValidUtf8(body)) {
    object[key] = body;
  } else {
    object[key + "_base64"] = Base64(body);
  }
}

}  // namespace

Transcript::Transcript(TimeSource now, const RedactionRules& rules, size_t max_body_bytes)
    : now_(std::move(now)), redactor_(rules), max_body_bytes_(max_body_bytes) {}

void Transcript::Record(TranscriptEntry entry) {
  // Bodies are redacted whole before they are cut, so a JSON field or a literal secret that
  // straddles the cut is still found.
  std::string request_type = entry.request_headers.Get("Content-Type").value_or("");
  std::string response_type = entry.response_headers.Get("Content-Type").value_or("");
  entry.url = redactor_.RedactUrl(entry.url);
  entry.request_headers = redactor_.RedactHeaders(entry.request_headers);
  entry.request_body = CutBody(redactor_.RedactBody(entry.request_body, request_type));
  entry.response_headers = redactor_.RedactHeaders(entry.response_headers);
  entry.response_body = CutBody(redactor_.RedactBody(entry.response_body, response_type));
  entry.error = redactor_.RedactText(entry.error);

  std::lock_guard lock(mutex_);
  entries_.push_back(std::move(entry));
}

std::vector<TranscriptEntry> Transcript::Entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

nlohmann::json Transcript::ToJson() const {
  nlohmann::json entries = nlohmann::json::array();
  for (const TranscriptEntry& entry : Entries()) {
    nlohmann::json object = {
        {"time", FormatTime(entry.time)},
        {"method", entry.method},
        {"url", entry.url},
        {"attempt", entry.attempt},
        {"status", entry.status},
        {"timing_ms",
         {{"total", entry.timing.total.count() / 1000.0},
          {"connect", entry.timing.connect.count() / 1000.0}}},
        {"request_headers", HeadersToJson(entry.request_headers)},
        {"response_headers", HeadersToJson(entry.response_headers)},
    };
    PutBody(object, "request_body", entry.request_body);
    PutBody(object, "response_body", entry.response_body);
    if (!entry.error.empty()) {
      object["error"] = entry.error;
    }
    entries.push_back(std::move(object));
  }
  return entries;
}

std::string Transcript::CutBody(std::string body) const {
  if (body.size() <= max_body_bytes_) {
    return body;
  }

  // Step back over UTF-8 continuation bytes so the kept part stays valid text.
  size_t keep = max_body_bytes_;
  while (keep > 0 && (static_cast<unsigned char>(body[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  size_t cut = body.size() - keep;
  body.resize(keep);
  body += fmt::format("...[{} more bytes not recorded]", cut);
  return body;
}

}  // namespace backout::http
