#include "support/webhook_receiver.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

namespace backout::testing {

std::string ExpectedSignature(const std::string& secret, const std::string& timestamp,
                              const std::string& body) {
  const std::string message = timestamp + "." + body;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex = "v1=";
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

WebhookReceiver::WebhookReceiver(std::string secret) : secret_(std::move(secret)) {
  now_ = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

WebhookReceiver::~WebhookReceiver() { Stop(); }

int WebhookReceiver::ReservePort() {
  if (port_ != 0) return port_;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  port_ = ntohs(address.sin_port);
  return port_;
}

std::string WebhookReceiver::Url() const { return fmt::format("http://127.0.0.1:{}/hook", port_); }

void WebhookReceiver::DelayNext(int count, std::chrono::milliseconds delay) {
  delay_ = delay;
  delayed_ = count;
}

std::vector<ReceivedDelivery> WebhookReceiver::Deliveries() const {
  std::lock_guard lock(mutex_);
  return deliveries_;
}

bool WebhookReceiver::Start() {
  ReservePort();
  server_ = std::make_unique<httplib::Server>();
  server_->Post("/hook", [this](const httplib::Request& request, httplib::Response& response) {
    arrived_++;
    if (delayed_.fetch_sub(1) > 0) std::this_thread::sleep_for(delay_);
    ReceivedDelivery delivery{.idempotency_key = request.get_header_value("Idempotency-Key"),
                              .event = request.get_header_value("Backout-Event"),
                              .timestamp = request.get_header_value("Backout-Timestamp"),
                              .signature = request.get_header_value("Backout-Signature"),
                              .body = request.body};
    delivery.signature_valid =
        delivery.signature == ExpectedSignature(secret_, delivery.timestamp, delivery.body);
    const int64_t sent = std::strtoll(delivery.timestamp.c_str(), nullptr, 10);
    delivery.fresh = std::llabs(now_() - sent) <= 300;
    const int status = delivery.signature_valid && delivery.fresh ? status_.load() : 401;
    {
      std::lock_guard lock(mutex_);
      deliveries_.push_back(std::move(delivery));
    }
    response.status = status;
  });
  if (!server_->bind_to_port("127.0.0.1", port_)) return false;
  thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  for (int i = 0; i < 200 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return server_->is_running();
}

void WebhookReceiver::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace backout::testing
