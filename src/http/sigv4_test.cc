#include "http/sigv4.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace backout::http {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The AWS SigV4 test suite in aws-c-auth's layout; testdata/aws-sigv4/README.md names the
// source and commit the files were copied from.
const fs::path kVectorsDir = BACKOUT_SIGV4_VECTORS_DIR;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Builds a time from the digits of "2015-08-30T12:36:00Z" or "20150830T123600Z".
TimePoint ParseUtcSeconds(std::string text) {
  std::erase_if(text, [](char c) { return c < '0' || c > '9'; });
  auto number = [&text](size_t at, size_t size) { return std::stoi(text.substr(at, size)); };
  std::chrono::year_month_day date{std::chrono::year(number(0, 4)),
                                   std::chrono::month(number(4, 2)),
                                   std::chrono::day(number(6, 2))};
  auto seconds = std::chrono::sys_days(date) + std::chrono::hours(number(8, 2)) +
                 std::chrono::minutes(number(10, 2)) + std::chrono::seconds(number(12, 2));
  return std::chrono::time_point_cast<std::chrono::microseconds>(seconds);
}

// One case: the request of request.txt, made into a Request the signer takes, and the
// signing context.
struct VectorCase {
  std::string name;
  Request request;
  AwsCredentials credentials;
  SigV4Options options;
  TimePoint time;
};

// Parses request.txt: a request line, header lines (a line starting with a space continues the
// previous header's value), an empty line and the body.
Request ParseRequestText(const std::string& text) {
  Request request;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  size_t space = line.find(' ');
  std::string method = line.substr(0, space);
  std::string target = line.substr(space + 1, line.rfind(' ') - space - 1);
  request.method = method == "POST" ? Method::kPost : Method::kGet;

  std::string host;
  while (std::getline(in, line) && !line.empty()) {
    if (line.front() == ' ' || line.front() == '\t') {
      auto& last = request.headers.mutable_fields().back();
      last.second += "\n" + line;
      continue;
    }
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    if (EqualsIgnoringCase(name, "host")) host = value;
    request.headers.Add(name, value);
  }
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  request.body = body;
  request.url = "https://" + host + target;
  return request;
}

VectorCase LoadCase(const std::string& name) {
  fs::path dir = kVectorsDir / name;
  json context = json::parse(ReadFile(dir / "context.json"));

  VectorCase vector;
  vector.name = name;
  vector.request = ParseRequestText(ReadFile(dir / "request.txt"));
  vector.credentials.access_key_id = context["credentials"]["access_key_id"];
  vector.credentials.secret_access_key = context["credentials"]["secret_access_key"];
  vector.credentials.session_token = context["credentials"].value("token", "");
  vector.options.region = context["region"];
  vector.options.service = context["service"];
  vector.options.normalize_path = context.value("normalize", true);
  vector.options.add_content_sha256 = context.value("sign_body", false);
  vector.options.sign_session_token = !context.value("omit_session_token", false);
  vector.time = ParseUtcSeconds(context["timestamp"]);
  return vector;
}

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kVectorsDir)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class SigV4SuiteTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    vector_ = LoadCase(GetParam());
    auto signature =
        SignRequest(vector_.request, vector_.credentials, vector_.options, vector_.time);
    ASSERT_TRUE(signature.has_value()) << signature.error().message;
    signature_ = *signature;
  }

  std::string Expected(const std::string& file) const {
    return ReadFile(kVectorsDir / GetParam() / file);
  }

  VectorCase vector_;
  SigV4Signature signature_;
};

TEST_P(SigV4SuiteTest, CanonicalRequestMatches) {
  EXPECT_EQ(signature_.canonical_request, Expected("header-canonical-request.txt"));
}

TEST_P(SigV4SuiteTest, StringToSignMatches) {
  EXPECT_EQ(signature_.string_to_sign, Expected("header-string-to-sign.txt"));
}

TEST_P(SigV4SuiteTest, SignatureMatches) {
  EXPECT_EQ(signature_.signature, Expected("header-signature.txt"));
}

TEST_P(SigV4SuiteTest, AuthorizationHeaderCarriesTheSignature) {
  auto header = vector_.request.headers.Get("Authorization");
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(*header, signature_.authorization);
  EXPECT_TRUE(header->ends_with("Signature=" + Expected("header-signature.txt")));
}

INSTANTIATE_TEST_SUITE_P(AwsSuite, SigV4SuiteTest, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(SigV4SuiteFilesTest, AllThirtyEightCasesArePresent) {
  EXPECT_EQ(CaseNames().size(), 38u) << "testdata/aws-sigv4 lost or gained a case";
}

TEST(SigV4SessionTokenTest, SessionTokenIsSentAndSigned) {
  VectorCase vector = LoadCase("get-vanilla-with-session-token");
  auto signature = SignRequest(vector.request, vector.credentials, vector.options, vector.time);
  ASSERT_TRUE(signature.has_value());
  EXPECT_EQ(vector.request.headers.Get("X-Amz-Security-Token"), vector.credentials.session_token);
  EXPECT_EQ(signature->signed_headers, "host;x-amz-date;x-amz-security-token");
}

TEST(SigV4SessionTokenTest, SessionTokenAddedAfterSigningIsSentButNotSigned) {
  VectorCase vector = LoadCase("post-sts-header-after");
  auto signature = SignRequest(vector.request, vector.credentials, vector.options, vector.time);
  ASSERT_TRUE(signature.has_value());
  EXPECT_EQ(vector.request.headers.Get("X-Amz-Security-Token"), vector.credentials.session_token);
  EXPECT_EQ(signature->signed_headers, "host;x-amz-date");
}

// The request /usr/bin/aws (Debian aws-cli 2.9.19) sent for `aws deploy get-deployment
// --deployment-id d-ABCDEF123`, captured with its signature (shared reference
// test-components.md, section 7).
constexpr std::string_view kCliAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kCliSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kCliDate = "20261204T155723Z";

Request CliRequest(std::string_view target, std::string_view body) {
  Request request;
  request.method = Method::kPost;
  request.url = "http://127.0.0.1:18900/";
  request.headers.Add("Content-Type", "application/x-amz-json-1.1");
  request.headers.Add("X-Amz-Target", std::string(target));
  request.headers.Add("User-Agent",
                      "aws-cli/2.9.19 Python/3.11.2 Linux/6.18.44-fc-v1272 "
                      "source/x86_64.debian.12 prompt/off command/deploy.get-deployment");
  request.body = std::string(body);
  return request;
}

TimePoint CliTime() { return ParseUtcSeconds(std::string(kCliDate)); }

SigV4Signature SignCliRequest(Request& request) {
  auto signature = SignRequest(
      request, AwsCredentials{std::string(kCliAccessKey), std::string(kCliSecretKey), ""},
      SigV4Options{"us-east-1", "codedeploy"}, CliTime());
  EXPECT_TRUE(signature.has_value());
  return signature.value_or(SigV4Signature{});
}

TEST(SigV4AwsCliTest, GetDeploymentCanonicalRequestMatchesTheCli) {
  Request request =
      CliRequest("CodeDeploy_20141006.GetDeployment", R"({"deploymentId": "d-ABCDEF123"})");
  SigV4Signature signature = SignCliRequest(request);
  EXPECT_EQ(signature.canonical_request,
            "POST\n/\n\n"
            "content-type:application/x-amz-json-1.1\n"
            "host:127.0.0.1:18900\n"
            "x-amz-date:20261204T155723Z\n"
            "x-amz-target:CodeDeploy_20141006.GetDeployment\n\n"
            "content-type;host;x-amz-date;x-amz-target\n"
            "5726eeb4ec565a89ef188b84659231a63b42ff01eb3658e830c6ed308b15d6cf");
}

TEST(SigV4AwsCliTest, GetDeploymentAuthorizationMatchesTheCli) {
  Request request =
      CliRequest("CodeDeploy_20141006.GetDeployment", R"({"deploymentId": "d-ABCDEF123"})");
  SignCliRequest(request);
  EXPECT_EQ(request.headers.Get("Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261204/us-east-1/codedeploy/"
            "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
            "Signature=1bd54b7fc1b3091c521889476ba3d50aa70f76c3cdf74d8468507396d1c7d3d0");
}

TEST(SigV4AwsCliTest, StopDeploymentSignatureMatchesTheCli) {
  Request request = CliRequest("CodeDeploy_20141006.StopDeployment",
                               R"({"deploymentId": "d-ABCDEF123", "autoRollbackEnabled": true})");
  SigV4Signature signature = SignCliRequest(request);
  EXPECT_EQ(signature.signature,
            "89bf40c4215a72770fef04076ca591cc12eb188eb0e77d268dcee54f9e5f8def");
}

TEST(SigV4AwsCliTest, HostKeepsANonDefaultPort) {
  Request request = CliRequest("CodeDeploy_20141006.GetDeployment", "{}");
  SignCliRequest(request);
  EXPECT_EQ(request.headers.Get("Host"), "127.0.0.1:18900");
}

TEST(SigV4Test, HostDropsTheDefaultPort) {
  Request request;
  request.url = "https://codedeploy.us-east-1.amazonaws.com:443/";
  auto signature = SignRequest(request, AwsCredentials{"AKID", "secret", ""},
                               SigV4Options{"us-east-1", "codedeploy"}, CliTime());
  ASSERT_TRUE(signature.has_value());
  EXPECT_EQ(request.headers.Get("Host"), "codedeploy.us-east-1.amazonaws.com");
}

TEST(SigV4Test, SigningAgainReplacesTheSignature) {
  Request request = CliRequest("CodeDeploy_20141006.GetDeployment", "{}");
  SignCliRequest(request);
  auto second = SignRequest(request, AwsCredentials{"AKID", "other", ""},
                            SigV4Options{"us-east-1", "codedeploy"}, CliTime());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(request.headers.GetAll("Authorization").size(), 1u);
  EXPECT_EQ(request.headers.GetAll("X-Amz-Date").size(), 1u);
  EXPECT_EQ(second->signed_headers, "content-type;host;x-amz-date;x-amz-target");
}

TEST(SigV4Test, UserAgentIsNotSigned) {
  Request request = CliRequest("CodeDeploy_20141006.GetDeployment", "{}");
  SigV4Signature signature = SignCliRequest(request);
  EXPECT_EQ(signature.signed_headers.find("user-agent"), std::string::npos);
}

TEST(SigV4Test, ContentSha256HeaderOnlyWhenAsked) {
  Request request = CliRequest("CodeDeploy_20141006.GetDeployment", "{}");
  SignCliRequest(request);
  EXPECT_FALSE(request.headers.Contains("X-Amz-Content-Sha256"));
}

TEST(SigV4Test, RejectsANonHttpUrl) {
  Request request;
  request.url = "ftp://example.com/";
  auto signature = SignRequest(request, AwsCredentials{"AKID", "secret", ""},
                               SigV4Options{"us-east-1", "codedeploy"}, CliTime());
  ASSERT_FALSE(signature.has_value());
  EXPECT_EQ(signature.error().kind, ErrorKind::kInvalidArgument);
}

TEST(SigV4Test, RejectsAnEmptySecretWithoutQuotingCredentials) {
  Request request;
  request.url = "https://example.com/";
  auto signature = SignRequest(request, AwsCredentials{"AKIDVISIBLE", "", ""},
                               SigV4Options{"us-east-1", "codedeploy"}, CliTime());
  ASSERT_FALSE(signature.has_value());
  EXPECT_EQ(signature.error().message.find("AKIDVISIBLE"), std::string::npos);
}

TEST(SigV4Test, ComputeRejectsAMalformedDate) {
  Headers headers{{"Host", "example.com"}};
  SigV4Input input{"GET", "/", "", &headers, Sha256Hex("")};
  auto signature = ComputeSigV4(input, AwsCredentials{"AKID", "secret", ""},
                                SigV4Options{"us-east-1", "codedeploy"}, "2015-08-30T12:36:00Z");
  ASSERT_FALSE(signature.has_value());
  EXPECT_NE(signature.error().message.find("X-Amz-Date"), std::string::npos);
}

TEST(SigV4Test, ComputeRequiresTheHostHeader) {
  Headers headers{{"X-Amz-Date", "20150830T123600Z"}};
  SigV4Input input{"GET", "/", "", &headers, Sha256Hex("")};
  auto signature = ComputeSigV4(input, AwsCredentials{"AKID", "secret", ""},
                                SigV4Options{"us-east-1", "codedeploy"}, "20150830T123600Z");
  ASSERT_FALSE(signature.has_value());
  EXPECT_NE(signature.error().message.find("Host"), std::string::npos);
}

TEST(SigV4Test, FormatAmzDateUsesUtcSeconds) {
  TimePoint time = CliTime() + std::chrono::microseconds(999'999);
  EXPECT_EQ(FormatAmzDate(time), "20261204T155723Z");
}

TEST(SigV4Test, Sha256OfEmptyText) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SigV4Test, CanonicalUriEncodesAnEncodedPathAgain) {
  EXPECT_EQ(CanonicalUri("/a%20b/", true), "/a%2520b/");
}

TEST(SigV4Test, CanonicalQueryEncodesPlusAndSlash) {
  EXPECT_EQ(CanonicalQuery("b=x/y&a=1+2"), "a=1%2B2&b=x%2Fy");
}

TEST(SigV4Test, CanonicalQueryGivesAMissingValueAnEqualsSign) {
  EXPECT_EQ(CanonicalQuery("flag&a=1"), "a=1&flag=");
}

TEST(SigV4AuthorizationTest, ParsesWhatSignRequestWrites) {
  Request request = CliRequest("CodeDeploy_20141006.GetDeployment", "{}");
  SigV4Signature signature = SignCliRequest(request);
  auto parsed = ParseSigV4Authorization(signature.authorization);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->access_key_id, kCliAccessKey);
  EXPECT_EQ(parsed->date, "20261204");
  EXPECT_EQ(parsed->region, "us-east-1");
  EXPECT_EQ(parsed->service, "codedeploy");
  EXPECT_EQ(parsed->signed_headers,
            (std::vector<std::string>{"content-type", "host", "x-amz-date", "x-amz-target"}));
  EXPECT_EQ(parsed->signature, signature.signature);
}

TEST(SigV4AuthorizationTest, RejectsAnotherScheme) {
  auto parsed = ParseSigV4Authorization("Bearer abc");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("AWS4-HMAC-SHA256"), std::string::npos);
}

TEST(SigV4AuthorizationTest, RejectsAMissingSignature) {
  auto parsed = ParseSigV4Authorization(
      "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("Signature"), std::string::npos);
}

TEST(SigV4AuthorizationTest, RejectsAShortCredentialScope) {
  auto parsed = ParseSigV4Authorization(
      "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1, SignedHeaders=host, "
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("Credential"), std::string::npos);
}

}  // namespace
}  // namespace backout::http
