// The demo's sample service: a web shop front deployed as release folders (the `releases`
// provider's layout). It serves the release that `<root>/current` points to and drives its own
// traffic, one simulated request every 50 ms, so Prometheus sees an error rate without a load
// generator. A release folder may hold `error_rate` (a fraction from 0 to 1, default 0); the
// demo's v2 fails half of its requests.
//
// GET /metrics   Prometheus text: sample_requests_total and sample_errors_total by version
// GET /checkout  200 with the live version, or 500 when the release's error rate is 0.5 or more
// GET /version   the live version
// POST /notifications  appends the body (one of Backout's webhook notifications) as one line to
//                      the file given with --notifications, so the demo can show them
//
// Usage: sample_service --listen 127.0.0.1:PORT --root FOLDER [--notifications FILE]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <httplib.h>

namespace {

namespace fs = std::filesystem;

struct Release {
  std::string version;  // the folder name under releases/
  double error_rate = 0;
};

Release ReadLive(const fs::path& root) {
  Release release;
  std::error_code error;
  const fs::path target = fs::read_symlink(root / "current", error);
  if (error) return release;
  release.version = target.filename().string();
  std::ifstream in(target / "error_rate");
  if (in) in >> release.error_rate;
  return release;
}

class Counters {
 public:
  void Count(const std::string& version, bool failed) {
    std::lock_guard lock(mutex_);
    ++requests_[version];
    errors_[version] += failed ? 1 : 0;
  }

  std::string Exposition() {
    std::lock_guard lock(mutex_);
    std::string text =
        "# HELP sample_requests_total Requests served, by release.\n"
        "# TYPE sample_requests_total counter\n";
    for (const auto& [version, count] : requests_) {
      text += "sample_requests_total{version=\"" + version + "\"} " + std::to_string(count) + "\n";
    }
    text +=
        "# HELP sample_errors_total Requests that failed, by release.\n"
        "# TYPE sample_errors_total counter\n";
    for (const auto& [version, count] : errors_) {
      text += "sample_errors_total{version=\"" + version + "\"} " + std::to_string(count) + "\n";
    }
    return text;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, long> requests_;
  std::map<std::string, long> errors_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:18490";
  fs::path root;
  fs::path notifications;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--listen") listen = argv[i + 1];
    if (flag == "--root") root = argv[i + 1];
    if (flag == "--notifications") notifications = argv[i + 1];
  }
  const auto colon = listen.rfind(':');
  if (root.empty() || colon == std::string::npos) {
    std::fprintf(stderr, "usage: sample_service --listen 127.0.0.1:PORT --root FOLDER\n");
    return 2;
  }
  const std::string host = listen.substr(0, colon);
  const int port = std::stoi(listen.substr(colon + 1));

  Counters counters;
  std::atomic<bool> running = true;
  std::thread traffic([&] {
    std::mt19937 random(42);
    std::uniform_real_distribution<double> draw(0, 1);
    while (running) {
      const Release live = ReadLive(root);
      if (!live.version.empty()) counters.Count(live.version, draw(random) < live.error_rate);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  httplib::Server server;
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& response) {
    response.set_content(counters.Exposition(), "text/plain; version=0.0.4");
  });
  server.Get("/version", [&](const httplib::Request&, httplib::Response& response) {
    response.set_content(ReadLive(root).version + "\n", "text/plain");
  });
  server.Get("/checkout", [&](const httplib::Request&, httplib::Response& response) {
    const Release live = ReadLive(root);
    const bool failing = live.version.empty() || live.error_rate >= 0.5;
    response.status = failing ? 500 : 200;
    response.set_content(failing ? "checkout failed on " + live.version + "\n"
                                 : "checkout ok on " + live.version + "\n",
                         "text/plain");
  });
  std::mutex notifications_mutex;
  server.Post("/notifications", [&](const httplib::Request& request, httplib::Response& response) {
    if (!notifications.empty()) {
      std::lock_guard lock(notifications_mutex);
      std::ofstream out(notifications, std::ios::app);
      std::string line = request.body;
      std::replace(line.begin(), line.end(), '\n', ' ');
      out << line << "\n";
    }
    response.status = 204;
  });
  const bool listened = server.listen(host, port);
  running = false;
  traffic.join();
  if (!listened) {
    std::fprintf(stderr, "sample_service: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  return 0;
}
