#include "http/curl_transfer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>

namespace backout::http::internal {

namespace {

// Idle handles kept for reuse; each keeps its own open connections.
constexpr size_t kMaxIdleHandles = 8;

struct UrlDeleter {
  const Libcurl* libcurl;
  void operator()(CURLU* url) const { libcurl->curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  const Libcurl* libcurl;
  void operator()(char* text) const { libcurl->curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

std::unexpected<Error> InvalidArgument(std::string message) {
  return std::unexpected(Error{ErrorKind::kInvalidArgument, std::move(message)});
}

std::string ToLower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool IsLoopbackHost(std::string_view host) {
  std::string lower = ToLower(host);
  if (lower == "localhost" || lower.ends_with(".localhost") || lower == "[::1]") {
    return true;
  }
  in_addr address{};
  if (inet_pton(AF_INET, lower.c_str(), &address) == 1) {
    return (ntohl(address.s_addr) >> 24) == 127;
  }
  return false;
}

// RFC 9110 token characters, the only ones allowed in a field name.
bool IsTokenChar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string_view TrimWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

struct ResponseSink {
  Attempt* attempt;
  size_t max_body_bytes;
};

// libcurl passes every header line of every response, interim ones (100 Continue) included. A
// status line starts a new response, so it drops the fields collected so far.
size_t OnHeaderLine(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  size_t length = size * count;
  std::string_view line(data, length);
  Headers& headers = sink->attempt->headers;

  if (line.starts_with("HTTP/")) {
    headers = Headers();
  } else if (!line.empty() && (line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
    // An obsolete folded line continues the previous field's value.
    std::string& value = headers.mutable_fields().back().second;
    value += ' ';
    value += TrimWhitespace(line);
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    headers.Add(std::string(TrimWhitespace(line.substr(0, colon))),
                std::string(TrimWhitespace(line.substr(colon + 1))));
  }
  return length;
}

size_t OnBodyData(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  size_t length = size * count;
  if (sink->attempt->body.size() + length > sink->max_body_bytes) {
    sink->attempt->body_too_large = true;
    return 0;  // any count but `length` makes libcurl stop with CURLE_WRITE_ERROR
  }
  sink->attempt->body.append(data, length);
  return length;
}

bool SendsBody(const Request& request) {
  return !request.body.empty() || request.method == Method::kPost ||
         request.method == Method::kPut || request.method == Method::kPatch;
}

curl_slist* BuildHeaderList(const Libcurl& libcurl, const Request& request) {
  curl_slist* list = nullptr;
  auto append = [&libcurl, &list](const std::string& line) {
    if (curl_slist* grown = libcurl.curl_slist_append(list, line.c_str())) {
      list = grown;
    }
  };

  for (const auto& [name, value] : request.headers) {
    // libcurl sends "Name;" as a field with an empty value; "Name:" would remove the field.
    append(value.empty() ? name + ";" : name + ": " + value);
  }
  // libcurl would otherwise wait up to a second for 100 Continue before sending a large body,
  // and label every body as a form.
  if (!request.headers.Contains("Expect")) {
    append("Expect:");
  }
  if (SendsBody(request) && !request.headers.Contains("Content-Type")) {
    append("Content-Type:");
  }
  return list;
}

void SetBlob(const Libcurl& libcurl, CURL* handle, CURLoption option, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  libcurl.curl_easy_setopt(handle, option, &blob);
}

}  // namespace

Result<void> InitializeLibcurl() {
  if (const Result<Libcurl>& loaded = LoadLibcurl(); !loaded) {
    return std::unexpected(loaded.error());
  }
  return {};
}

Result<Target> ParseTarget(std::string_view url) {
  const Result<Libcurl>& loaded = LoadLibcurl();
  if (!loaded) {
    return std::unexpected(loaded.error());
  }
  const Libcurl& libcurl = *loaded;
  std::unique_ptr<CURLU, UrlDeleter> parsed(libcurl.curl_url(), UrlDeleter{&libcurl});
  if (!parsed) {
    return std::unexpected(Error{ErrorKind::kInternal, "libcurl could not allocate a URL"});
  }
  std::string text(url);
  if (CURLUcode code = libcurl.curl_url_set(parsed.get(), CURLUPART_URL, text.c_str(), 0);
      code != CURLUE_OK) {
    return InvalidArgument(
        fmt::format("{}; expected an absolute URL such as https://host:port/path",
                    libcurl.curl_url_strerror(code)));
  }

  char* raw_scheme = nullptr;
  char* raw_host = nullptr;
  libcurl.curl_url_get(parsed.get(), CURLUPART_SCHEME, &raw_scheme, 0);
  CurlString scheme(raw_scheme, CurlStringDeleter{&libcurl});
  libcurl.curl_url_get(parsed.get(), CURLUPART_HOST, &raw_host, 0);
  CurlString host(raw_host, CurlStringDeleter{&libcurl});
  std::string scheme_name = scheme ? ToLower(scheme.get()) : "";
  if (scheme_name != "http" && scheme_name != "https") {
    return InvalidArgument(fmt::format("unsupported scheme '{}'; use http or https", scheme_name));
  }
  if (!host) {
    return InvalidArgument("the URL has no host");
  }

  Target target;
  target.host = host.get();
  target.loopback = IsLoopbackHost(target.host);
  return target;
}

Result<void> CheckHeaders(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](unsigned char c) { return IsTokenChar(c); })) {
      return InvalidArgument(fmt::format(
          "invalid header name '{}': use only letters, digits and !#$%&'*+-.^_`|~", name));
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return InvalidArgument(fmt::format(
          "the value of header {} contains a line break or NUL, which would inject header lines",
          name));
    }
  }
  return {};
}

CurlTransfer::CurlTransfer(TransferSettings settings) : settings_(std::move(settings)) {
  // Client::Create loads libcurl before it makes a transfer. Perform reports the load error if a
  // transfer was made without it.
  if (const Result<Libcurl>& loaded = LoadLibcurl(); loaded) {
    libcurl_ = &*loaded;
  }
}

CurlTransfer::~CurlTransfer() {
  // A handle exists only if libcurl loaded.
  for (CURL* handle : idle_handles_) {
    libcurl_->curl_easy_cleanup(handle);
  }
}

Attempt CurlTransfer::Perform(const Request& request, const Target& target) {
  Attempt attempt;
  if (libcurl_ == nullptr) {
    attempt.code = CURLE_FAILED_INIT;
    attempt.failure = LoadLibcurl().error().message;
    return attempt;
  }
  const Libcurl& libcurl = *libcurl_;
  CURL* handle = AcquireHandle();
  if (handle == nullptr) {
    attempt.code = CURLE_FAILED_INIT;
    attempt.failure = "libcurl could not create a transfer handle";
    return attempt;
  }

  char error_buffer[CURL_ERROR_SIZE] = "";
  ResponseSink sink{&attempt, settings_.max_response_bytes};
  curl_slist* header_list = BuildHeaderList(libcurl, request);
  Configure(handle, request, target);
  libcurl.curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list);
  libcurl.curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  libcurl.curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeaderLine);
  libcurl.curl_easy_setopt(handle, CURLOPT_HEADERDATA, &sink);
  libcurl.curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBodyData);
  libcurl.curl_easy_setopt(handle, CURLOPT_WRITEDATA, &sink);

  attempt.code = libcurl.curl_easy_perform(handle);

  long status = 0;
  curl_off_t total_us = 0;
  curl_off_t connect_us = 0;
  libcurl.curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  libcurl.curl_easy_getinfo(handle, CURLINFO_TOTAL_TIME_T, &total_us);
  libcurl.curl_easy_getinfo(handle, CURLINFO_CONNECT_TIME_T, &connect_us);
  attempt.status = static_cast<int>(status);
  attempt.timing.total = std::chrono::microseconds(total_us);
  attempt.timing.connect = std::chrono::microseconds(connect_us);
  if (attempt.code != CURLE_OK) {
    attempt.failure =
        error_buffer[0] != '\0'
            ? fmt::format("{} ({})", libcurl.curl_easy_strerror(attempt.code), error_buffer)
            : libcurl.curl_easy_strerror(attempt.code);
  }

  // The handle still points at this frame's buffers; ReleaseHandle resets it before reuse.
  ReleaseHandle(handle);
  libcurl.curl_slist_free_all(header_list);
  return attempt;
}

CURL* CurlTransfer::AcquireHandle() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_handles_.empty()) {
      CURL* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return libcurl_->curl_easy_init();
}

void CurlTransfer::ReleaseHandle(CURL* handle) {
  // curl_easy_reset clears the options but keeps the handle's open connections, DNS cache and TLS
  // sessions, which is what makes the next request on it cheap.
  libcurl_->curl_easy_reset(handle);
  std::lock_guard lock(mutex_);
  if (idle_handles_.size() < kMaxIdleHandles) {
    idle_handles_.push_back(handle);
    return;
  }
  libcurl_->curl_easy_cleanup(handle);
}

void CurlTransfer::Configure(CURL* handle, const Request& request, const Target& target) const {
  const Libcurl& libcurl = *libcurl_;
  libcurl.curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  libcurl.curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  // Signals are not thread-safe; without this libcurl uses SIGALRM for DNS timeouts.
  libcurl.curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  libcurl.curl_easy_setopt(handle, CURLOPT_USERAGENT, settings_.user_agent.c_str());
  libcurl.curl_easy_setopt(handle, CURLOPT_ACCEPT_ENCODING, "");
  libcurl.curl_easy_setopt(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  libcurl.curl_easy_setopt(
      handle, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(request.connect_timeout.value_or(settings_.connect_timeout).count()));
  libcurl.curl_easy_setopt(
      handle, CURLOPT_TIMEOUT_MS,
      static_cast<long>(request.total_timeout.value_or(settings_.total_timeout).count()));

  // Method and body. HEAD must not wait for a body, and POSTFIELDS with a custom method is how
  // libcurl sends a body with PUT, PATCH or DELETE.
  if (request.method == Method::kHead) {
    libcurl.curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (SendsBody(request)) {
    libcurl.curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size()));
    libcurl.curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != Method::kPost) {
      libcurl.curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, MethodName(request.method).data());
    }
  } else if (request.method == Method::kGet) {
    libcurl.curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
  } else {
    libcurl.curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, MethodName(request.method).data());
  }

  // libcurl resends a request by itself when a reused connection dies before any response byte
  // arrives (Curl_retry_request in lib/transfer.c), although the server may have acted on it. A
  // new connection rules that out for requests that must not run twice.
  if (!request.IsIdempotent()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_FRESH_CONNECT, 1L);
  }

  // TLS. A configured CA replaces both the default bundle and the default CA directory, so only
  // that CA is trusted.
  const TlsMaterial& tls = settings_.tls;
  if (!tls.ca_file.empty()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_CAINFO, tls.ca_file.c_str());
    libcurl.curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);
  } else if (!tls.ca_pem.empty()) {
    SetBlob(libcurl, handle, CURLOPT_CAINFO_BLOB, tls.ca_pem);
    libcurl.curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);
  }
  if (!tls.cert_file.empty()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_SSLCERT, tls.cert_file.c_str());
  } else if (!tls.cert_pem.empty()) {
    SetBlob(libcurl, handle, CURLOPT_SSLCERT_BLOB, tls.cert_pem);
  }
  if (!tls.key_file.empty()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_SSLKEY, tls.key_file.c_str());
  } else if (!tls.key_pem.empty()) {
    SetBlob(libcurl, handle, CURLOPT_SSLKEY_BLOB, tls.key_pem);
  }
  if (!tls.key_password.empty()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_KEYPASSWD, tls.key_password.c_str());
  }
  if (tls.insecure_skip_verify) {
    libcurl.curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 0L);
    libcurl.curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  // Proxy. An empty CURLOPT_PROXY disables every proxy, the environment's included.
  if (settings_.proxy.has_value()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_PROXY, settings_.proxy->c_str());
  } else if (target.loopback) {
    libcurl.curl_easy_setopt(handle, CURLOPT_PROXY, "");
  }
  if (settings_.no_proxy.has_value()) {
    libcurl.curl_easy_setopt(handle, CURLOPT_NOPROXY, settings_.no_proxy->c_str());
  }
}

bool IsRetryableCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

ErrorKind ErrorKindOf(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorKind::kTimeout;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
      return ErrorKind::kInvalidArgument;
    case CURLE_FAILED_INIT:
    case CURLE_OUT_OF_MEMORY:
      return ErrorKind::kInternal;
    default:
      return ErrorKind::kUnavailable;
  }
}

std::string_view HintFor(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      return "check that the server is running and listening at that host and port";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "check the host name in the URL";
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
      return "check the proxy option or the http_proxy, https_proxy and no_proxy environment "
             "variables";
    case CURLE_OPERATION_TIMEDOUT:
      return "the server did not respond in time; raise connect_timeout or total_timeout if it is "
             "only slow";
    case CURLE_PEER_FAILED_VERIFICATION:
      return "the server's certificate is not trusted or does not name this host; set ca_file or "
             "ca_pem to the CA that signed it";
    case CURLE_SSL_CONNECT_ERROR:
      return "the TLS handshake failed; check that the server speaks TLS on this port and accepts "
             "the client certificate";
    case CURLE_SSL_CERTPROBLEM:
      return "check client_cert_file, client_cert_pem and the key options";
    case CURLE_SSL_CACERT_BADFILE:
      return "check ca_file or ca_pem";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return "the connection broke before the response was complete; the server may have closed "
             "it or rejected the client certificate";
    case CURLE_WRITE_ERROR:
      return "the response body exceeds max_response_bytes";
    default:
      return "";
  }
}

}  // namespace backout::http::internal
