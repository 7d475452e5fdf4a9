#include "http/redactor.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

namespace backout::http {

namespace {

constexpr std::array<std::string_view, 5> kBuiltInHeaders = {
    "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Amz-Security-Token"};
constexpr std::array<std::string_view, 3> kBuiltInQueryParams = {"access_token", "X-Amz-Signature",
                                                                 "X-Amz-Security-Token"};

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Percent-encodes every byte outside RFC 3986's unreserved set; `plus_for_space` gives the
// application/x-www-form-urlencoded variant.
std::string PercentEncode(std::string_view text, bool plus_for_space) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (IsUnreserved(c)) {
      encoded += static_cast<char>(c);
    } else if (c == ' ' && plus_for_space) {
      encoded += '+';
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 0x0F];
    }
  }
  return encoded;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes and '+' as a space; malformed escapes stay as they are.
std::string PercentDecode(std::string_view text) {
  std::string decoded;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      decoded += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      decoded += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

std::string JsonEscape(std::string_view text) {
  std::string quoted = nlohmann::json(std::string(text))
                           .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

bool ContainsIgnoringCase(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& candidate) {
    return EqualsIgnoringCase(candidate, name);
  });
}

// Returns the index of the quote that closes the JSON string opening at `open`, or npos.
size_t FindStringEnd(std::string_view text, size_t open) {
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i;
    }
  }
  return std::string_view::npos;
}

size_t SkipWhitespace(std::string_view text, size_t i) {
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    ++i;
  }
  return i;
}

// Returns the index just past the JSON value starting at `start`: a string, a nested object or
// array (brackets balanced, strings skipped), or a scalar ending at a delimiter.
size_t SkipJsonValue(std::string_view text, size_t start) {
  if (start >= text.size()) {
    return start;
  }
  if (text[start] == '"') {
    size_t end = FindStringEnd(text, start);
    return end == std::string_view::npos ? text.size() : end + 1;
  }
  if (text[start] == '{' || text[start] == '[') {
    int depth = 0;
    for (size_t i = start; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"') {
        i = FindStringEnd(text, i);
        if (i == std::string_view::npos) {
          return text.size();
        }
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return text.size();
  }
  size_t end = text.find_first_of(",}] \t\r\n", start);
  return end == std::string_view::npos ? text.size() : end;
}

}  // namespace

Redactor::Redactor(const RedactionRules& rules) {
  headers_.assign(kBuiltInHeaders.begin(), kBuiltInHeaders.end());
  headers_.insert(headers_.end(), rules.headers.begin(), rules.headers.end());
  json_fields_ = rules.json_fields;
  query_params_.assign(kBuiltInQueryParams.begin(), kBuiltInQueryParams.end());
  query_params_.insert(query_params_.end(), rules.query_params.begin(), rules.query_params.end());

  for (const std::string& secret : rules.secret_values) {
    if (secret.empty()) {
      continue;
    }
    for (std::string form :
         {secret, PercentEncode(secret, false), PercentEncode(secret, true), JsonEscape(secret)}) {
      if (std::find(secret_forms_.begin(), secret_forms_.end(), form) == secret_forms_.end()) {
        secret_forms_.push_back(std::move(form));
      }
    }
  }
  std::stable_sort(secret_forms_.begin(), secret_forms_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::RedactUrl(std::string_view url) const {
  std::string result;
  size_t scheme_end = url.find("://");
  size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  size_t authority_end = std::min(url.find_first_of("/?#", authority_start), url.size());

  // User information: everything before the last '@' of the authority.
  std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  size_t at = authority.rfind('@');
  result.append(url.substr(0, authority_start));
  if (scheme_end != std::string_view::npos && at != std::string_view::npos) {
    result.append(kRedacted);
    result.append(authority.substr(at));
  } else {
    result.append(authority);
  }

  size_t fragment_start = std::min(url.find('#', authority_end), url.size());
  size_t query_start = std::min(url.find('?', authority_end), fragment_start);
  result.append(url.substr(authority_end, query_start - authority_end));
  if (query_start < fragment_start) {
    result += '?';
    result.append(RedactParams(url.substr(query_start + 1, fragment_start - query_start - 1)));
  }
  if (fragment_start < url.size()) {
    result += '#';
    result.append(RedactParams(url.substr(fragment_start + 1)));
  }
  return RedactText(result);
}

Headers Redactor::RedactHeaders(const Headers& headers) const {
  Headers redacted;
  for (const auto& [name, value] : headers) {
    redacted.Add(name, IsSensitiveHeader(name) ? std::string(kRedacted) : RedactText(value));
  }
  return redacted;
}

std::string Redactor::RedactBody(std::string_view body, std::string_view content_type) const {
  std::string media_type(content_type.substr(0, content_type.find(';')));
  while (!media_type.empty() && media_type.back() == ' ') {
    media_type.pop_back();
  }
  if (EqualsIgnoringCase(media_type, "application/x-www-form-urlencoded")) {
    return RedactText(RedactParams(body));
  }
  if (!json_fields_.empty() && body.find('"') != std::string_view::npos) {
    return RedactText(RedactJson(body));
  }
  return RedactText(body);
}

std::string Redactor::RedactText(std::string_view text) const {
  if (secret_forms_.empty()) {
    return std::string(text);
  }

  // One pass, longest secret first at each position, so replacement text is never searched again.
  std::string result;
  result.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const std::string* match = nullptr;
    for (const std::string& form : secret_forms_) {
      if (text.compare(i, form.size(), form) == 0) {
        match = &form;
        break;
      }
    }
    if (match != nullptr) {
      result.append(kRedacted);
      i += match->size();
    } else {
      result += text[i++];
    }
  }
  return result;
}

bool Redactor::IsSensitiveHeader(std::string_view name) const {
  return ContainsIgnoringCase(headers_, name);
}

bool Redactor::IsSecretParam(std::string_view encoded_name) const {
  return ContainsIgnoringCase(query_params_, PercentDecode(encoded_name));
}

bool Redactor::IsSecretJsonField(std::string_view key) const {
  return ContainsIgnoringCase(json_fields_, key);
}

std::string Redactor::RedactParams(std::string_view params) const {
  std::string result;
  size_t start = 0;
  while (start <= params.size()) {
    size_t end = std::min(params.find('&', start), params.size());
    std::string_view param = params.substr(start, end - start);
    size_t equals = param.find('=');
    if (equals != std::string_view::npos && IsSecretParam(param.substr(0, equals))) {
      result.append(param.substr(0, equals + 1));
      result.append(kRedacted);
    } else {
      result.append(param);
    }
    if (end < params.size()) {
      result += '&';
    }
    start = end + 1;
  }
  return result;
}

// Scans the text instead of parsing it, so a valid body keeps its formatting and a malformed or
// truncated one still loses the secret values it contains. In valid JSON a string followed by a
// colon is always an object key.
std::string Redactor::RedactJson(std::string_view body) const {
  std::string result;
  result.reserve(body.size());
  size_t i = 0;
  while (i < body.size()) {
    if (body[i] != '"') {
      result += body[i++];
      continue;
    }
    size_t end = FindStringEnd(body, i);
    if (end == std::string_view::npos) {
      result.append(body.substr(i));
      break;
    }
    std::string_view key = body.substr(i + 1, end - i - 1);
    result.append(body.substr(i, end + 1 - i));
    i = end + 1;

    size_t colon = SkipWhitespace(body, i);
    if (colon >= body.size() || body[colon] != ':' || !IsSecretJsonField(key)) {
      continue;
    }
    size_t value_start = SkipWhitespace(body, colon + 1);
    result.append(body.substr(i, value_start - i));
    result += '"';
    result.append(kRedacted);
    result += '"';
    i = SkipJsonValue(body, value_start);
  }
  return result;
}

}  // namespace backout::http
