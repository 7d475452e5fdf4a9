#include "http/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <utility>

#include <fmt/format.h>

namespace backout::http {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";

// Headers left out of the signature: the signature itself, and headers that libcurl or a proxy
// may add or rewrite on the way.
constexpr std::array<std::string_view, 4> kUnsignedHeaders = {"authorization", "user-agent",
                                                              "expect", "x-amzn-trace-id"};

std::unexpected<Error> Invalid(std::string message) {
  return std::unexpected(Error{ErrorKind::kInvalidArgument, std::move(message)});
}

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '\0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0F];
  }
  return out;
}

using Mac = std::array<unsigned char, 32>;

Mac HmacSha256(std::string_view key, std::string_view data) {
  Mac mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &length);
  return mac;
}

std::string_view AsText(const Mac& mac) {
  return std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size());
}

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ToLower);
  return out;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendEncoded(std::string& out, std::string_view text, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0x0F]);
    }
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; a '%' not followed by two hex digits stays as it is.
std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(begin, end - begin);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    begin = end + 1;
  }

  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  bool trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
  if (!segments.empty() && trailing_slash) out.push_back('/');
  return out;
}

// Trims the value and replaces each run of spaces, tabs and line breaks inside it by one space.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool IsAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && (text[i] < '0' || text[i] > '9')) return false;
  }
  return true;
}

struct UrlParts {
  std::string scheme;
  std::string host;  // the Host header's value: default ports left out
  std::string path;
  std::string query;
};

Result<UrlParts> SplitUrl(std::string_view url) {
  UrlParts parts;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Invalid("cannot sign a request whose URL has no scheme; use http:// or https://");
  }
  parts.scheme = Lower(url.substr(0, scheme_end));
  if (parts.scheme != "http" && parts.scheme != "https") {
    return Invalid(
        fmt::format("cannot sign a request to a {} URL; use http:// or https://", parts.scheme));
  }

  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('#'));
  size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return Invalid("cannot sign a request whose URL has no host");

  std::string host = Lower(authority);
  std::string_view default_port = parts.scheme == "https" ? ":443" : ":80";
  size_t closing_bracket = host.rfind(']');
  size_t colon = host.rfind(':');
  bool has_port = colon != std::string::npos &&
                  (closing_bracket == std::string::npos || colon > closing_bracket);
  if (has_port && std::string_view(host).substr(colon) == default_port) host.resize(colon);
  parts.host = std::move(host);

  size_t question = rest.find('?');
  parts.path = std::string(rest.substr(0, question));
  if (question != std::string_view::npos) parts.query = std::string(rest.substr(question + 1));
  return parts;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return Hex(digest.data(), length);
}

std::string FormatAmzDate(TimePoint time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto day = std::chrono::floor<std::chrono::days>(seconds);
  std::chrono::year_month_day date{day};
  std::chrono::hh_mm_ss clock{seconds - day};
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     clock.hours().count(), clock.minutes().count(), clock.seconds().count());
}

std::string CanonicalUri(std::string_view path, bool normalize) {
  std::string source = normalize ? NormalizePath(path) : std::string(path.empty() ? "/" : path);
  std::string out;
  out.reserve(source.size());
  AppendEncoded(out, source, true);
  return out;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t begin = 0;
  while (begin < query.size()) {
    size_t end = query.find('&', begin);
    if (end == std::string_view::npos) end = query.size();
    std::string_view param = query.substr(begin, end - begin);
    begin = end + 1;
    if (param.empty()) continue;

    size_t equals = param.find('=');
    std::string name;
    std::string value;
    AppendEncoded(name, PercentDecode(param.substr(0, equals)), false);
    if (equals != std::string_view::npos) {
      AppendEncoded(value, PercentDecode(param.substr(equals + 1)), false);
    }
    params.emplace_back(std::move(name), std::move(value));
  }
  std::sort(params.begin(), params.end());

  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out.append(name);
    out.push_back('=');
    out.append(value);
  }
  return out;
}

Result<SigV4Signature> ComputeSigV4(const SigV4Input& input, const AwsCredentials& credentials,
                                    const SigV4Options& options, std::string_view amz_date) {
  if (!IsAmzDate(amz_date)) {
    return Invalid(fmt::format("X-Amz-Date '{}' is not in the form 20150830T123600Z", amz_date));
  }
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Invalid("the AWS access key id or secret access key is empty; configure credentials");
  }
  if (options.region.empty() || options.service.empty()) {
    return Invalid("the SigV4 region and service must not be empty");
  }
  if (input.headers == nullptr) return Invalid("no headers to sign; Host is required");

  // Step 1: the canonical headers, grouped by lower-case name in sorted order.
  std::map<std::string, std::string> grouped;
  for (const auto& [name, value] : *input.headers) {
    std::string& joined = grouped[Lower(name)];
    if (!joined.empty()) joined.push_back(',');
    joined.append(CanonicalHeaderValue(value));
  }
  if (!grouped.contains("host")) return Invalid("the Host header must be signed");

  SigV4Signature out;
  std::string canonical_headers;
  for (const auto& [name, value] : grouped) {
    canonical_headers.append(fmt::format("{}:{}\n", name, value));
    if (!out.signed_headers.empty()) out.signed_headers.push_back(';');
    out.signed_headers.append(name);
  }

  // Step 2: the canonical request and the string to sign.
  out.amz_date = std::string(amz_date);
  std::string_view date = amz_date.substr(0, 8);
  out.credential_scope =
      fmt::format("{}/{}/{}/{}", date, options.region, options.service, kTerminator);
  out.canonical_request = fmt::format(
      "{}\n{}\n{}\n{}\n{}\n{}", input.method, CanonicalUri(input.path, options.normalize_path),
      CanonicalQuery(input.query), canonical_headers, out.signed_headers, input.payload_hash);
  out.string_to_sign = fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amz_date, out.credential_scope,
                                   Sha256Hex(out.canonical_request));

  // Step 3: the signing key is a chain of HMACs over the scope, starting from the secret.
  Mac key = HmacSha256("AWS4" + credentials.secret_access_key, date);
  key = HmacSha256(AsText(key), options.region);
  key = HmacSha256(AsText(key), options.service);
  key = HmacSha256(AsText(key), kTerminator);
  Mac signature = HmacSha256(AsText(key), out.string_to_sign);
  out.signature = Hex(signature.data(), signature.size());

  out.authorization = fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kAlgorithm,
                                  credentials.access_key_id, out.credential_scope,
                                  out.signed_headers, out.signature);
  return out;
}

Result<SigV4Signature> SignRequest(Request& request, const AwsCredentials& credentials,
                                   const SigV4Options& options, TimePoint now) {
  auto url = SplitUrl(request.url);
  if (!url) return std::unexpected(url.error());

  // Step 1: set the headers the signature covers.
  std::string payload_hash = Sha256Hex(request.body);
  std::string amz_date = FormatAmzDate(now);
  if (!request.headers.Contains("host")) request.headers.Set("Host", url->host);
  request.headers.Set("X-Amz-Date", amz_date);
  if (credentials.session_token.empty()) {
    request.headers.Remove("X-Amz-Security-Token");
  } else {
    request.headers.Set("X-Amz-Security-Token", credentials.session_token);
  }
  if (options.add_content_sha256) request.headers.Set("X-Amz-Content-Sha256", payload_hash);

  // Step 2: sign all of them but the ones that may change in transit.
  Headers signed_headers;
  for (const auto& [name, value] : request.headers) {
    std::string lower = Lower(name);
    bool excluded = std::find(kUnsignedHeaders.begin(), kUnsignedHeaders.end(), lower) !=
                        kUnsignedHeaders.end() ||
                    (!options.sign_session_token && lower == "x-amz-security-token");
    if (!excluded) signed_headers.Add(name, value);
  }
  SigV4Input input{MethodName(request.method), url->path, url->query, &signed_headers,
                   payload_hash};
  auto signature = ComputeSigV4(input, credentials, options, amz_date);
  if (!signature) return std::unexpected(signature.error());

  request.headers.Set("Authorization", signature->authorization);
  return signature;
}

Result<SigV4Authorization> ParseSigV4Authorization(std::string_view value) {
  if (!value.starts_with(kAlgorithm) || value.size() == kAlgorithm.size() ||
      value[kAlgorithm.size()] != ' ') {
    return Invalid(fmt::format("the Authorization header does not start with '{} '", kAlgorithm));
  }

  // The three parts may come in any order, separated by commas and optional spaces.
  std::map<std::string, std::string, std::less<>> parts;
  std::string_view rest = value.substr(kAlgorithm.size() + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    size_t equals = part.find('=');
    if (equals == std::string_view::npos) {
      return Invalid(
          "the Authorization header has a part without '='; expected "
          "Credential=…, SignedHeaders=…, Signature=…");
    }
    parts[std::string(part.substr(0, equals))] = std::string(part.substr(equals + 1));
  }
  for (std::string_view required : {"Credential", "SignedHeaders", "Signature"}) {
    if (!parts.contains(required)) {
      return Invalid(fmt::format("the Authorization header has no {}= part", required));
    }
  }

  // Credential=AKID/20150830/us-east-1/service/aws4_request
  std::vector<std::string> scope;
  std::string_view credential = parts["Credential"];
  size_t begin = 0;
  while (begin <= credential.size()) {
    size_t end = credential.find('/', begin);
    if (end == std::string_view::npos) end = credential.size();
    scope.emplace_back(credential.substr(begin, end - begin));
    begin = end + 1;
  }
  if (scope.size() != 5 || scope[4] != kTerminator || scope[1].size() != 8 || scope[0].empty()) {
    return Invalid(
        fmt::format("the Authorization header's Credential '{}' is not in the form "
                    "KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
                    credential));
  }

  SigV4Authorization out;
  out.access_key_id = scope[0];
  out.date = scope[1];
  out.region = scope[2];
  out.service = scope[3];
  std::string_view names = parts["SignedHeaders"];
  begin = 0;
  while (begin < names.size()) {
    size_t end = names.find(';', begin);
    if (end == std::string_view::npos) end = names.size();
    out.signed_headers.emplace_back(names.substr(begin, end - begin));
    begin = end + 1;
  }
  if (out.signed_headers.empty()) {
    return Invalid("the Authorization header's SignedHeaders list is empty");
  }
  out.signature = parts["Signature"];
  if (out.signature.size() != 64) {
    return Invalid("the Authorization header's Signature is not 64 hex digits");
  }
  return out;
}

}  // namespace backout::http
