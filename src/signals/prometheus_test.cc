#include "signals/prometheus.h"

#include <gtest/gtest.h>

#include "http/test_server.h"
#include "signals/probe.h"

namespace backout::signals {
namespace {

std::shared_ptr<http::Client> MakeClient() {
  http::ClientOptions options;
  options.retry.max_attempts = 1;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.total_timeout = std::chrono::seconds(2);
  auto client = http::Client::Create(options);
  EXPECT_TRUE(client.has_value());
  return std::shared_ptr<http::Client>(std::move(*client));
}

// A stand-in that returns a fixed body for /api/v1/query, for the decoding cases. The real
// Prometheus is exercised by tests/integration.
class PrometheusClientTest : public ::testing::Test {
 protected:
  void Serve(int status, std::string body) {
    server_.server().Get("/api/v1/query", [status, body, this](const httplib::Request& request,
                                                               httplib::Response& response) {
      last_query_ = request.get_param_value("query");
      response.status = status;
      response.set_content(body, "application/json");
    });
    ASSERT_TRUE(server_.Start());
  }

  std::unique_ptr<PrometheusClient> Client() {
    auto client = PrometheusClient::Create(server_.Url(""), MakeClient());
    EXPECT_TRUE(client.has_value());
    return std::move(*client);
  }

  http::testing::LocalServer server_;
  std::string last_query_;
};

TEST_F(PrometheusClientTest, VectorWithSamplesIsFiring) {
  Serve(200, R"({"status":"success","data":{"resultType":"vector","result":[
    {"metric":{"service":"web"},"value":[1.5,"0.42"]}]}})");
  const ConditionResult result = Client()->Evaluate("rate(errors_total[1m]) > 0.1");
  EXPECT_EQ(result.state, ConditionState::kFiring);
  EXPECT_EQ(result.samples, 1);
  EXPECT_NE(result.detail.find("0.42"), std::string::npos);
  EXPECT_EQ(last_query_, "rate(errors_total[1m]) > 0.1");
}

TEST_F(PrometheusClientTest, EmptyVectorIsClear) {
  Serve(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  EXPECT_EQ(Client()->Evaluate("up == 0").state, ConditionState::kClear);
}

TEST_F(PrometheusClientTest, RejectedQueryIsUnknown) {
  Serve(400, R"({"status":"error","errorType":"bad_data","error":"parse error"})");
  const ConditionResult result = Client()->Evaluate("up ==");
  EXPECT_EQ(result.state, ConditionState::kUnknown);
  EXPECT_NE(result.detail.find("bad_data"), std::string::npos);
}

TEST_F(PrometheusClientTest, NonJsonAnswerIsUnknown) {
  Serve(200, "<html>login</html>");
  EXPECT_EQ(Client()->Evaluate("up").state, ConditionState::kUnknown);
}

TEST(PrometheusClient, UnreachableServerIsUnknownNeverClear) {
  // Port 1 on loopback: nothing listens there, so the connection is refused.
  auto client = PrometheusClient::Create("http://127.0.0.1:1", MakeClient());
  ASSERT_TRUE(client.has_value());
  const ConditionResult result = (*client)->Evaluate("up");
  EXPECT_EQ(result.state, ConditionState::kUnknown);
  EXPECT_NE(result.detail.find("could not be read"), std::string::npos);
}

TEST(PrometheusClient, RejectsUrlWithoutScheme) {
  EXPECT_FALSE(PrometheusClient::Create("127.0.0.1:9090", MakeClient()).has_value());
}

TEST(HttpProbe, UnexpectedStatusIsFiring) {
  http::testing::LocalServer server;
  server.server().Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.status = 503;
  });
  ASSERT_TRUE(server.Start());
  auto client = MakeClient();
  const ConditionResult result =
      RunProbe(*client, ProbeSpec{.name = "health", .url = server.Url("/healthz")});
  EXPECT_EQ(result.state, ConditionState::kFiring);
  EXPECT_NE(result.detail.find("503"), std::string::npos);
}

TEST(HttpProbe, ExpectedStatusIsClear) {
  http::testing::LocalServer server;
  server.server().Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.status = 200;
  });
  ASSERT_TRUE(server.Start());
  auto client = MakeClient();
  EXPECT_EQ(RunProbe(*client, ProbeSpec{.name = "health", .url = server.Url("/healthz")}).state,
            ConditionState::kClear);
}

TEST(HttpProbe, RefusedConnectionIsFiring) {
  auto client = MakeClient();
  EXPECT_EQ(RunProbe(*client, ProbeSpec{.name = "health", .url = "http://127.0.0.1:1/"}).state,
            ConditionState::kFiring);
}

}  // namespace
}  // namespace backout::signals
