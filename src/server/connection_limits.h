#pragma once

#include <chrono>
#include <cstddef>

namespace backout::server {

// Limits that keep slow or idle clients from holding the server's request threads. cpp-httplib
// 0.11 gives each connection a thread for as long as it stays open, and its read timeout applies
// to each read, so a client that sends a byte every few seconds could keep its thread forever.
struct ConnectionLimits {
  // Maximum time a client may take to send one request: the request line, the headers and the
  // body, counted from its first byte. After it the server sends 408 and closes the connection,
  // however often bytes arrive. A TLS handshake gets the same time from the accept.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  // Maximum time an open connection may wait for its first or next request before it closes.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};
  // Maximum time one write of a response may wait for the client to read.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Maximum number of connections one client address may have open at once. A connection over
  // the limit gets 503 (plain HTTP) or is closed (TLS) before its request is read. 0 turns the
  // limit off.
  size_t max_connections_per_client = 32;
};

}  // namespace backout::server
