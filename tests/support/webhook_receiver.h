#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace backout::testing {

// One POST the receiver accepted, with its own verdict on the signature.
struct ReceivedDelivery {
  std::string idempotency_key;
  std::string event;
  std::string timestamp;
  std::string signature;
  std::string body;
  bool signature_valid = false;  // the HMAC-SHA256 of "TIMESTAMP.BODY" under the secret matches
  bool fresh = false;            // the timestamp is within five minutes of the receiver's clock
};

// A webhook receiver on 127.0.0.1 that checks every delivery's signature as
// docs/notifications.md describes, with its own HMAC code rather than Backout's. It responds
// 204 (or the status set) after an optional delay. Stop() closes the port, so senders see
// connection refused until Start() opens the same port again.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(std::string secret);
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // Picks a free port without listening on it, so the URL is known before the first Start().
  int ReservePort();
  // Listens on the reserved port (reserving one first when none is) and waits until it accepts.
  bool Start();
  void Stop();

  int port() const { return port_; }
  std::string Url() const;  // http://127.0.0.1:PORT/hook

  std::vector<ReceivedDelivery> Deliveries() const;
  // Sets the HTTP status of the responses to later deliveries.
  void SetStatus(int status) { status_ = status; }
  // Delays the response to each of the next `count` deliveries by `delay`.
  void DelayNext(int count, std::chrono::milliseconds delay);
  // Number of deliveries that arrived, counted before any delay.
  int Arrived() const { return arrived_.load(); }
  // The receiver's clock in Unix seconds, for the freshness check; the system clock by default.
  void SetNow(std::function<int64_t()> now) { now_ = std::move(now); }

 private:
  std::string secret_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<ReceivedDelivery> deliveries_;
  std::atomic<int> status_{204};
  std::atomic<int> delayed_{0};
  std::atomic<int> arrived_{0};
  std::chrono::milliseconds delay_{0};
  std::function<int64_t()> now_;
};

// Returns "v1=" and the hex HMAC-SHA256 of "TIMESTAMP.BODY" under `secret`.
std::string ExpectedSignature(const std::string& secret, const std::string& timestamp,
                              const std::string& body);

}  // namespace backout::testing
