// The API benchmark's ceiling: cpp-httplib, the HTTP library `backout serve` uses, returning
// every GET with one fixed JSON body from memory, with no authentication and no store behind it.
// Usage: static_server PORT BODY_FILE

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <httplib.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: static_server PORT BODY_FILE\n";
    return 2;
  }
  const int port = std::stoi(argv[1]);
  std::ifstream in(argv[2]);
  if (!in) {
    std::cerr << "static_server: cannot read " << argv[2] << "\n";
    return 1;
  }
  std::stringstream body;
  body << in.rdbuf();
  const std::string response = body.str();

  httplib::Server server;
  // `backout serve` sets the same socket option. Without it, Nagle's algorithm and delayed ACKs
  // would cap the ceiling, not the library.
  server.set_tcp_nodelay(true);
  server.Get(".*", [&](const httplib::Request&, httplib::Response& reply) {
    reply.set_content(response, "application/json");
  });
  if (!server.listen("127.0.0.1", port)) {
    std::cerr << "static_server: cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  return 0;
}
