#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include "http/client.h"
#include "http/test_pki.h"
#include "http/test_server.h"
#include "support/temp_dir.h"

namespace backout::http {
namespace {

using std::chrono::milliseconds;
using testing::LocalServer;
using testing::TestPki;

// The common name of the client certificate the TLS connection presented, or "none".
std::string PeerCommonName(const httplib::Request& request) {
  if (request.ssl == nullptr) {
    return "none";
  }
  X509* peer = SSL_get1_peer_certificate(request.ssl);
  if (peer == nullptr) {
    return "none";
  }
  char name[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof(name));
  X509_free(peer);
  return name;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = testing::MakeTestPki();
    pki_.WriteTo(folder_.path());
  }

  // Starts an HTTPS server that responds to /who with the client certificate's common name.
  std::unique_ptr<LocalServer> StartServer(bool require_client_certificate) {
    auto server =
        std::make_unique<LocalServer>(pki_.server_cert_file.string(), pki_.server_key_file.string(),
                                      require_client_certificate ? pki_.ca_cert_file.string() : "");
    server->server().Get("/who", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content(PeerCommonName(request), "text/plain");
    });
    EXPECT_TRUE(server->Start());
    return server;
  }

  ClientOptions Options() {
    ClientOptions options;
    options.retry.max_attempts = 2;
    options.sleep = [this](milliseconds delay) { delays_.push_back(delay); };
    options.connect_timeout = milliseconds(5000);
    options.total_timeout = milliseconds(10'000);
    return options;
  }

  Result<Response> Get(ClientOptions options, const std::string& url) {
    auto client = Client::Create(std::move(options));
    if (!client) {
      ADD_FAILURE() << "Create failed: " << client.error().message;
      return std::unexpected(client.error());
    }
    return (*client)->Send(Request{.method = Method::kGet, .url = url});
  }

  backout::testing::TempDir folder_;
  TestPki pki_;
  std::vector<milliseconds> delays_;
};

TEST_F(TlsTest, TrustsServerThroughCaFile) {
  auto server = StartServer(false);
  ClientOptions options = Options();
  options.ca_file = pki_.ca_cert_file.string();

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "none");
}

TEST_F(TlsTest, TrustsServerThroughInlineCaPem) {
  auto server = StartServer(false);
  ClientOptions options = Options();
  options.ca_pem = pki_.ca_cert_pem;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST_F(TlsTest, TrustsLocalhostName) {
  auto server = StartServer(false);
  ClientOptions options = Options();
  options.ca_pem = pki_.ca_cert_pem;

  auto response = Get(std::move(options), fmt::format("https://localhost:{}/who", server->port()));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST_F(TlsTest, RejectsServerWithoutConfiguredCa) {
  auto server = StartServer(false);

  auto response = Get(Options(), server->Url("/who"));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(response.error().message.find("certificate"), std::string::npos)
      << response.error().message;
  EXPECT_NE(response.error().message.find("set ca_file or ca_pem"), std::string::npos)
      << response.error().message;
  EXPECT_TRUE(delays_.empty()) << "a certificate that is not trusted does not become trusted";
}

TEST_F(TlsTest, RejectsServerSignedByAnotherCa) {
  auto server = StartServer(false);
  ClientOptions options = Options();
  options.ca_pem = testing::MakeTestPki().ca_cert_pem;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_FALSE(response.has_value());
  EXPECT_NE(response.error().message.find("certificate"), std::string::npos)
      << response.error().message;
}

TEST_F(TlsTest, InsecureSkipVerifyAcceptsUnknownCertificate) {
  auto server = StartServer(false);
  ClientOptions options = Options();
  options.insecure_skip_verify = true;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST_F(TlsTest, SendsClientCertificateFromFiles) {
  auto server = StartServer(true);
  ClientOptions options = Options();
  options.ca_file = pki_.ca_cert_file.string();
  options.client_cert_file = pki_.client_cert_file.string();
  options.client_key_file = pki_.client_key_file.string();

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "backout-test-client");
}

TEST_F(TlsTest, SendsClientCertificateFromInlinePem) {
  auto server = StartServer(true);
  ClientOptions options = Options();
  options.ca_pem = pki_.ca_cert_pem;
  options.client_cert_pem = pki_.client_cert_pem;
  options.client_key_pem = pki_.client_key_pem;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "backout-test-client");
}

TEST_F(TlsTest, ReadsClientKeyFromCertificatePem) {
  auto server = StartServer(true);
  ClientOptions options = Options();
  options.ca_pem = pki_.ca_cert_pem;
  options.client_cert_pem = pki_.client_cert_pem + pki_.client_key_pem;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->body, "backout-test-client");
}

TEST_F(TlsTest, ServerRequiringCertificateRejectsClientWithout) {
  auto server = StartServer(true);
  ClientOptions options = Options();
  options.ca_pem = pki_.ca_cert_pem;
  options.retry.max_attempts = 1;

  auto response = Get(std::move(options), server->Url("/who"));

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().kind, ErrorKind::kUnavailable);
}

class TlsCreateTest : public TlsTest {
 protected:
  Error CreateError(ClientOptions options) {
    auto client = Client::Create(std::move(options));
    if (client.has_value()) {
      ADD_FAILURE() << "Create succeeded";
      return Error{};
    }
    EXPECT_EQ(client.error().kind, ErrorKind::kInvalidArgument);
    return client.error();
  }
};

TEST_F(TlsCreateTest, RejectsMissingCaFile) {
  ClientOptions options;
  options.ca_file = (folder_.path() / "absent.pem").string();

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("cannot read ca_file " + (folder_.path() / "absent.pem").string()),
            std::string::npos)
      << error.message;
}

TEST_F(TlsCreateTest, RejectsCaPemWithoutCertificate) {
  ClientOptions options;
  options.ca_pem = "not a certificate";

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("ca_pem contains no PEM certificate"), std::string::npos)
      << error.message;
}

TEST_F(TlsCreateTest, RejectsBothCaFileAndCaPem) {
  ClientOptions options;
  options.ca_file = pki_.ca_cert_file.string();
  options.ca_pem = pki_.ca_cert_pem;

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("both ca_file and ca_pem are set"), std::string::npos)
      << error.message;
}

TEST_F(TlsCreateTest, RejectsKeyOfAnotherCertificate) {
  ClientOptions options;
  options.client_cert_pem = pki_.client_cert_pem;
  options.client_key_pem = pki_.server_key_pem;

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("does not match the client certificate"), std::string::npos)
      << error.message;
}

TEST_F(TlsCreateTest, RejectsCertificateWithoutKey) {
  ClientOptions options;
  options.client_cert_file = pki_.client_cert_file.string();

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("has no private key beside it"), std::string::npos) << error.message;
}

TEST_F(TlsCreateTest, RejectsKeyWithoutCertificate) {
  ClientOptions options;
  options.client_key_pem = pki_.client_key_pem;

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("without a client certificate"), std::string::npos) << error.message;
}

TEST_F(TlsCreateTest, RejectsUnreadableClientKey) {
  ClientOptions options;
  options.client_cert_pem = pki_.client_cert_pem;
  options.client_key_pem = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n";

  Error error = CreateError(std::move(options));

  EXPECT_NE(error.message.find("the client key (client_key_pem) cannot be read"), std::string::npos)
      << error.message;
}

}  // namespace
}  // namespace backout::http
