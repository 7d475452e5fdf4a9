#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/error.h"
#include "http/headers.h"
#include "http/message.h"
#include "http/retry.h"

// AWS Signature Version 4 for requests signed in headers: the canonical request, the string to
// sign, the signing key and the Authorization header. The same functions serve a client that
// signs and a test server that verifies, so both compute the canonical request one way.
namespace backout::http {

// Credentials of one AWS identity. The secret key never appears in an error message or a
// SigV4Signature; the session token appears only in a signed canonical request.
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token{};  // only for temporary credentials (STS); empty otherwise
};

struct SigV4Options {
  std::string region;   // such as us-east-1
  std::string service;  // the signing name, such as codedeploy
  // Removes "." and ".." segments and repeated slashes from the path before encoding it. Every
  // service except S3 expects this.
  bool normalize_path = true;
  // Sends the payload hash in X-Amz-Content-Sha256 and signs that header, as S3 requires. Other
  // services read the hash only from the canonical request.
  bool add_content_sha256 = false;
  // Whether X-Amz-Security-Token is signed. A few services expect it added after signing.
  bool sign_session_token = true;
};

// The values one signature was built from, for tests and for a verifier's diagnostics. The
// canonical request contains the session token when it is signed, so do not log it.
struct SigV4Signature {
  std::string amz_date;          // 20150830T123600Z
  std::string credential_scope;  // 20150830/us-east-1/service/aws4_request
  std::string signed_headers;    // host;x-amz-date
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // the Authorization header's value
};

// A request as the signature covers it.
struct SigV4Input {
  std::string_view method;  // GET, POST…
  std::string_view path;    // the path as sent, before '?'; empty means "/"
  std::string_view query;   // the query as sent, after '?'
  // Exactly the headers to sign, including Host and X-Amz-Date. Names compare without case; a
  // repeated name is signed as one header whose values are joined by commas, in order.
  const Headers* headers = nullptr;
  std::string_view payload_hash;  // Sha256Hex of the body
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Formats `time` in the X-Amz-Date form, such as 20150830T123600Z.
std::string FormatAmzDate(TimePoint time);

// Returns the canonical URI. With `normalize`, dot segments and repeated slashes are removed and a
// trailing slash is kept. Then every byte except letters, digits, '-', '.', '_', '~' and '/' is
// percent-encoded. A path already encoded on the wire is encoded again, which is what services
// other than S3 expect.
std::string CanonicalUri(std::string_view path, bool normalize);

// Returns the canonical query string. Each name and value is percent-decoded, then encoded as in
// CanonicalUri with '/' encoded too. A missing value becomes empty, and the pairs are sorted by
// name, then value. A '+' is a literal plus sign, not a space.
std::string CanonicalQuery(std::string_view query);

// Computes the signature of `input` with the date given in X-Amz-Date form. Fails with
// kInvalidArgument when the date is malformed, a header is missing, or a credential, the region
// or the service is empty.
Result<SigV4Signature> ComputeSigV4(const SigV4Input& input, const AwsCredentials& credentials,
                                    const SigV4Options& options, std::string_view amz_date);

// Signs `request` in place for the time `now`: sets Host (when absent, from the URL), X-Amz-Date,
// X-Amz-Security-Token (when the credentials carry a token), X-Amz-Content-Sha256 (when the
// options ask for it) and Authorization. Signs every header of the request except Authorization,
// User-Agent, Expect and X-Amzn-Trace-Id, which proxies and libcurl may change or add. Signing
// again replaces the earlier signature, so a request may be re-signed before it is resent.
// Fails with kInvalidArgument on a URL that is not http(s) or on empty credentials.
Result<SigV4Signature> SignRequest(Request& request, const AwsCredentials& credentials,
                                   const SigV4Options& options, TimePoint now);

// The parts of an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
struct SigV4Authorization {
  std::string access_key_id;
  std::string date;  // 20150830
  std::string region;
  std::string service;
  std::vector<std::string> signed_headers;  // lower-case, as listed
  std::string signature;
};

// Parses an Authorization header value. Fails with kInvalidArgument naming the missing or
// malformed part; the message never quotes the signature.
Result<SigV4Authorization> ParseSigV4Authorization(std::string_view value);

}  // namespace backout::http
