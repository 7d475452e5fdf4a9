#include "api_server.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "tables.h"

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

// The index in the request log of the request this server thread is handling.
thread_local size_t current_request_ = SIZE_MAX;

constexpr std::string_view kHookPrefix = "/_emulator/";

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> segments;
  size_t begin = 1;
  while (begin < path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string::npos) end = path.size();
    if (end > begin) segments.push_back(path.substr(begin, end - begin));
    begin = end + 1;
  }
  return segments;
}

void Reply(httplib::Response& res, const ApiResult& result) {
  res.status = result.status;
  res.set_content(result.body.dump(), "application/json");
}

json ResourceEntry(Resource resource, const char* singular, std::vector<std::string> verbs) {
  const ResourceInfo& info = Info(resource);
  return json{{"name", std::string(info.plural)},
              {"singularName", singular},
              {"namespaced", true},
              {"kind", std::string(info.kind)},
              {"verbs", verbs},
              {"shortNames", {std::string(info.short_name)}},
              {"categories", {"all"}}};
}

const std::vector<std::string> kObjectVerbs = {"create", "delete", "deletecollection", "get",
                                               "list",   "patch",  "update",           "watch"};

json SubresourceEntry(const char* name, const char* kind, const char* group,
                      std::vector<std::string> verbs) {
  json entry{
      {"name", name}, {"singularName", ""}, {"namespaced", true}, {"kind", kind}, {"verbs", verbs}};
  if (group[0] != '\0') {
    entry["group"] = group;
    entry["version"] = "v1";
  }
  return entry;
}

// The API path of a request, once parsed: which resource, in which namespace, which object.
struct ObjectPath {
  Resource resource;
  std::string ns;    // empty for a list across namespaces
  std::string name;  // empty for a collection
};

// Reads /api/v1/... and /apis/apps/v1/... paths. Returns nullopt for anything else.
std::optional<ObjectPath> ParseObjectPath(const std::vector<std::string>& segments) {
  size_t at = 0;
  bool core = false;
  if (segments.size() >= 2 && segments[0] == "api" && segments[1] == "v1") {
    core = true;
    at = 2;
  } else if (segments.size() >= 3 && segments[0] == "apis" && segments[1] == "apps" &&
             segments[2] == "v1") {
    at = 3;
  } else {
    return std::nullopt;
  }
  ObjectPath path{};
  size_t left = segments.size() - at;
  if (left >= 3 && segments[at] == "namespaces") {
    path.ns = segments[at + 1];
    at += 2;
    left -= 2;
  }
  if (left != 1 && left != 2) return std::nullopt;
  auto resource = ParseResource(segments[at]);
  if (!resource) return std::nullopt;
  if ((*resource == Resource::kPods) != core) return std::nullopt;
  path.resource = *resource;
  if (left == 2) {
    if (path.ns.empty()) return std::nullopt;
    path.name = segments[at + 1];
  }
  return path;
}

std::string Param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : "";
}

bool WantsTable(const httplib::Request& req) {
  return req.get_header_value("Accept").find("as=Table") != std::string::npos;
}

std::string PeerCommonName(const httplib::Request& req) {
  if (req.ssl == nullptr) return "";
  X509* peer = SSL_get1_peer_certificate(req.ssl);
  if (peer == nullptr) return "";
  std::string name;
  if (SSL_get_verify_result(req.ssl) == X509_V_OK) {
    char buffer[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buffer,
                                  sizeof buffer) > 0) {
      name = buffer;
    }
  }
  X509_free(peer);
  return name;
}

bool IsPublicPath(const std::string& path) {
  return path == "/version" || path == "/healthz" || path == "/livez" || path == "/readyz";
}

}  // namespace

ApiServer::ApiServer(Cluster& cluster, const TlsMaterial& tls, ApiServerOptions options)
    : cluster_(cluster), tls_(tls), options_(std::move(options)) {}

ApiServer::~ApiServer() { Stop(); }

bool ApiServer::Start(int port) {
  TlsMaterial tls = tls_;
  server_ = std::make_unique<httplib::SSLServer>([tls](SSL_CTX& ctx) {
    BIO* cert_bio = BIO_new_mem_buf(tls.server_cert_pem.data(), -1);
    BIO* key_bio = BIO_new_mem_buf(tls.server_key_pem.data(), -1);
    BIO* ca_bio = BIO_new_mem_buf(tls.ca_cert_pem.data(), -1);
    X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    bool ok = cert != nullptr && key != nullptr && ca != nullptr &&
              SSL_CTX_use_certificate(&ctx, cert) == 1 && SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
              X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), ca) == 1;
    if (ok) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      // A client certificate is optional: token clients send none, certificate clients are
      // checked against the emulator's CA.
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      // With peer verification on, OpenSSL refuses to resume a session (libcurl resumes on
      // every new connection) unless the server names a session context.
      static constexpr unsigned char kSessionContext[] = "kube-emulator";
      SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof kSessionContext - 1);
      SSL_CTX_add_client_CA(&ctx, ca);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(ca);
    BIO_free(cert_bio);
    BIO_free(key_bio);
    BIO_free(ca_bio);
    return ok;
  });
  if (!server_->is_valid()) return false;
  // Watches hold a thread each for as long as they run.
  server_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_timeout(30);
  Register();

  if (port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
  } else {
    if (!server_->bind_to_port("127.0.0.1", port)) return false;
    port_ = port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

void ApiServer::Stop() {
  stopping_ = true;
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::vector<RecordedRequest> ApiServer::Requests() const {
  std::lock_guard lock(requests_mutex_);
  std::vector<RecordedRequest> requests;
  for (const RecordedRequest& request : requests_) {
    if (!request.method.empty()) requests.push_back(request);
  }
  return requests;
}

void ApiServer::ClearRequests() {
  std::lock_guard lock(requests_mutex_);
  // Requests in flight keep an index into the log, so entries are blanked, not erased.
  for (RecordedRequest& request : requests_) request = RecordedRequest{};
}

std::string ApiServer::Authenticate(const httplib::Request& req) const {
  if (!options_.token.empty() &&
      req.get_header_value("Authorization") == "Bearer " + options_.token) {
    return options_.token_user;
  }
  return PeerCommonName(req);
}

void ApiServer::Record(const httplib::Request& req, int status) {
  RecordedRequest record;
  record.time = SystemClock::now();
  record.method = req.method;
  record.target = req.target;
  record.content_type = req.get_header_value("Content-Type");
  record.accept = req.get_header_value("Accept");
  record.user_agent = req.get_header_value("User-Agent");
  record.impersonate_user = req.get_header_value("Impersonate-User");
  record.user = status == 401 ? "" : Authenticate(req);
  record.body = req.body;
  record.status = status;
  std::lock_guard lock(requests_mutex_);
  requests_.push_back(std::move(record));
  current_request_ = requests_.size() - 1;
}

void ApiServer::Register() {
  httplib::Server& server = *server_;

  // Requests are recorded before they are handled, so a client that has its response can rely
  // on finding its request in the log. Rejected requests are recorded here. The handler records
  // the others once their body is read, and the logger fills in the status after the response.
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    current_request_ = SIZE_MAX;
    // The API server compresses only responses above 128 KiB, so none of the emulator's. httplib
    // would compress every JSON response the client accepts compressed (brotli at its slowest
    // setting for libcurl), so the request's Accept-Encoding is dropped. The server owns the
    // request object; only the handler's view of it is const.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    if (!Authenticate(req).empty() || IsPublicPath(req.path)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    Record(req, 401);
    Reply(res, StatusError(401, "Unauthorized", "Unauthorized"));
    return httplib::Server::HandlerResponse::Handled;
  });

  server.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard lock(requests_mutex_);
    if (current_request_ < requests_.size()) requests_[current_request_].status = res.status;
  });

  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      Reply(res, StatusError(404, "NotFound", "the server could not find the requested resource"));
    }
  });

  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    Record(req, 0);
    std::vector<std::string> segments = Segments(req.path);
    SystemClock::time_point now = SystemClock::now();

    // Test hooks.
    if (req.path.starts_with(kHookPrefix)) {
      std::string hook = req.path.substr(kHookPrefix.size());
      json body = json::object();
      if (!req.body.empty()) {
        try {
          body = json::parse(req.body);
        } catch (const json::parse_error& error) {
          Reply(res, StatusError(400, "BadRequest", error.what()));
          return;
        }
      }
      if (hook == "apply" && req.method == "POST") {
        std::string ns = Param(req, "namespace");
        Reply(res, cluster_.Apply(ns.empty() ? "default" : ns, body,
                                  Param(req, "lastApplied") == "true"));
      } else if (hook == "pod-behaviour" && req.method == "POST") {
        PodBehaviour behaviour;
        std::string fault = body.value("fault", "none");
        if (fault == "crash") behaviour.fault = PodFault::kCrashLoop;
        if (fault == "image_pull") behaviour.fault = PodFault::kImagePull;
        if (fault == "config_error") behaviour.fault = PodFault::kConfigError;
        if (body.contains("startDelayMs")) {
          behaviour.start_delay = std::chrono::milliseconds(body["startDelayMs"].get<int64_t>());
        }
        cluster_.SetPodBehaviour(body.value("image", ""), behaviour);
        Reply(res, ApiResult{200, json{{"image", body.value("image", "")}, {"fault", fault}}});
      } else if (hook == "snapshot" && req.method == "GET") {
        Reply(res, ApiResult{200, cluster_.Snapshot()});
      } else if (hook == "restore" && req.method == "POST") {
        cluster_.Restore(body);
        Reply(res, ApiResult{200, json::object()});
      } else if (hook == "controllers" && req.method == "POST") {
        if (options_.set_controllers_running) {
          options_.set_controllers_running(body.value("running", true));
        }
        Reply(res, ApiResult{200, body});
      } else if (hook == "requests" && req.method == "GET") {
        json list = json::array();
        for (const RecordedRequest& record : Requests()) {
          list.push_back({{"time", FormatTimestamp(record.time)},
                          {"method", record.method},
                          {"target", record.target},
                          {"contentType", record.content_type},
                          {"userAgent", record.user_agent},
                          {"impersonateUser", record.impersonate_user},
                          {"user", record.user},
                          {"status", record.status},
                          {"body", record.body}});
        }
        Reply(res, ApiResult{200, list});
      } else {
        Reply(res, StatusError(404, "NotFound", "unknown emulator hook " + req.path));
      }
      return;
    }

    // Discovery.
    if (req.method == "GET") {
      if (req.path == "/version") {
        Reply(res, ApiResult{200,
                             {{"major", "1"},
                              {"minor", options_.minor_version},
                              {"gitVersion", fmt::format("v1.{}.4", options_.minor_version)},
                              {"gitCommit", "0000000000000000000000000000000000000000"},
                              {"gitTreeState", "clean"},
                              {"buildDate", "2025-04-22T16:03:17Z"},
                              {"goVersion", "go1.23.6"},
                              {"compiler", "gc"},
                              {"platform", "linux/amd64"}}});
        return;
      }
      if (req.path == "/healthz" || req.path == "/livez" || req.path == "/readyz") {
        res.set_content("ok", "text/plain");
        return;
      }
      if (req.path == "/api") {
        Reply(res, ApiResult{200,
                             {{"kind", "APIVersions"},
                              {"versions", {"v1"}},
                              {"serverAddressByClientCIDRs",
                               {{{"clientCIDR", "0.0.0.0/0"},
                                 {"serverAddress", fmt::format("127.0.0.1:{}", port_)}}}}}});
        return;
      }
      json apps_group{{"name", "apps"},
                      {"versions", {{{"groupVersion", "apps/v1"}, {"version", "v1"}}}},
                      {"preferredVersion", {{"groupVersion", "apps/v1"}, {"version", "v1"}}}};
      if (req.path == "/apis") {
        Reply(res,
              ApiResult{
                  200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", {apps_group}}}});
        return;
      }
      if (req.path == "/apis/apps") {
        json group = apps_group;
        group["kind"] = "APIGroup";
        group["apiVersion"] = "v1";
        Reply(res, ApiResult{200, group});
        return;
      }
      if (req.path == "/api/v1") {
        Reply(res,
              ApiResult{
                  200,
                  {{"kind", "APIResourceList"},
                   {"groupVersion", "v1"},
                   {"resources",
                    {{{"name", "namespaces"},
                      {"singularName", "namespace"},
                      {"namespaced", false},
                      {"kind", "Namespace"},
                      {"verbs", {"get", "list"}},
                      {"shortNames", {"ns"}}},
                     ResourceEntry(Resource::kPods, "pod", kObjectVerbs),
                     SubresourceEntry("pods/status", "Pod", "", {"get", "patch", "update"})}}}});
        return;
      }
      if (req.path == "/apis/apps/v1") {
        Reply(res, ApiResult{200,
                             {{"kind", "APIResourceList"},
                              {"apiVersion", "v1"},
                              {"groupVersion", "apps/v1"},
                              {"resources",
                               {ResourceEntry(Resource::kDeployments, "deployment", kObjectVerbs),
                                SubresourceEntry("deployments/status", "Deployment", "",
                                                 {"get", "patch", "update"}),
                                ResourceEntry(Resource::kReplicaSets, "replicaset", kObjectVerbs),
                                SubresourceEntry("replicasets/status", "ReplicaSet", "",
                                                 {"get", "patch", "update"})}}}});
        return;
      }
      if (segments.size() >= 3 && segments[0] == "api" && segments[1] == "v1" &&
          segments[2] == "namespaces" && segments.size() <= 4) {
        auto namespace_object = [](const std::string& name) {
          return json{{"kind", "Namespace"},
                      {"apiVersion", "v1"},
                      {"metadata", {{"name", name}}},
                      {"spec", {{"finalizers", {"kubernetes"}}}},
                      {"status", {{"phase", "Active"}}}};
        };
        if (segments.size() == 4) {
          Reply(res, ApiResult{200, namespace_object(segments[3])});
        } else {
          Reply(res, ApiResult{200,
                               {{"kind", "NamespaceList"},
                                {"apiVersion", "v1"},
                                {"metadata", json::object()},
                                {"items", {namespace_object("default")}}}});
        }
        return;
      }
    }

    auto path = ParseObjectPath(segments);
    if (!path) {
      Reply(res, StatusError(404, "NotFound", "the server could not find the requested resource"));
      return;
    }

    if (req.method == "GET" && !path->name.empty()) {
      ApiResult result = cluster_.Get(path->resource, path->ns, path->name);
      if (result.status == 200 && WantsTable(req)) {
        result.body = BuildTable(path->resource, json::array({result.body}),
                                 result.body["metadata"].value("resourceVersion", ""), now);
      }
      Reply(res, result);
      return;
    }

    if (req.method == "GET") {
      auto labels = LabelSelector::Parse(Param(req, "labelSelector"));
      auto fields = FieldSelector::Parse(Param(req, "fieldSelector"));
      if (!labels || !fields) {
        Reply(res, StatusError(400, "BadRequest", "unable to parse the label or field selector"));
        return;
      }
      std::string watch = Param(req, "watch");
      if (watch != "true" && watch != "1") {
        ApiResult result = cluster_.List(path->resource, path->ns, *labels, *fields);
        if (WantsTable(req)) {
          result.body = BuildTable(path->resource, result.body["items"],
                                   result.body["metadata"]["resourceVersion"], now);
        }
        Reply(res, result);
        return;
      }

      // A watch: a chunked stream of {"type","object"} lines until its timeout or the end.
      struct WatchState {
        uint64_t last = 0;
        std::vector<json> initial;
        std::chrono::steady_clock::time_point deadline;
      };
      auto state = std::make_shared<WatchState>();
      std::string version = Param(req, "resourceVersion");
      if (version.empty() || version == "0") {
        ApiResult list = cluster_.List(path->resource, path->ns, *labels, *fields);
        state->last = std::stoull(list.body["metadata"]["resourceVersion"].get<std::string>());
        for (json& item : list.body["items"]) {
          item["kind"] = std::string(Info(path->resource).kind);
          item["apiVersion"] = ApiVersion(path->resource);
          state->initial.push_back({{"type", "ADDED"}, {"object", std::move(item)}});
        }
      } else {
        state->last = std::stoull(version);
      }
      std::string timeout = Param(req, "timeoutSeconds");
      int seconds = timeout.empty() ? 1800 : std::min(std::stoi(timeout), 1800);
      state->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);

      // The stream=watch parameter also keeps httplib from gzipping the stream, which would hold
      // events back in the compressor until it fills.
      res.set_chunked_content_provider(
          "application/json;stream=watch", [this, state, path = *path, labels = *labels,
                                            fields = *fields](size_t, httplib::DataSink& sink) {
            auto send = [&sink](const json& event) {
              std::string line = event.dump() + "\n";
              return sink.write(line.data(), line.size());
            };
            for (const json& event : state->initial) {
              if (!send(event)) return false;
            }
            state->initial.clear();
            if (stopping_ || std::chrono::steady_clock::now() >= state->deadline) {
              sink.done();
              return true;
            }
            uint64_t seen = cluster_.ResourceVersion();
            auto events = cluster_.EventsAfter(path.resource, state->last);
            if (!events) {
              send({{"type", "ERROR"},
                    {"object", StatusError(410, "Expired",
                                           fmt::format("too old resource version: {}", state->last))
                                   .body}});
              sink.done();
              return true;
            }
            bool sent = false;
            for (const WatchEvent& event : *events) {
              state->last = std::max(state->last, event.resource_version);
              const json& object = event.object;
              if (!path.ns.empty() && object["metadata"].value("namespace", "") != path.ns) {
                continue;
              }
              if (!labels.Matches(object["metadata"].value("labels", json::object()))) continue;
              if (!fields.Matches(object)) continue;
              if (!send({{"type", event.type}, {"object", object}})) return false;
              sent = true;
            }
            state->last = std::max(state->last, seen);
            if (!sent) cluster_.WaitForEvent(seen, std::chrono::milliseconds(250));
            return sink.is_writable();
          });
      return;
    }

    if (req.method == "POST" && path->name.empty() && !path->ns.empty()) {
      try {
        Reply(res, cluster_.Create(path->resource, path->ns, json::parse(req.body)));
      } catch (const json::parse_error& error) {
        Reply(res, StatusError(400, "BadRequest", error.what()));
      }
      return;
    }
    if (req.method == "PUT" && !path->name.empty()) {
      try {
        Reply(res, cluster_.Update(path->resource, path->ns, path->name, json::parse(req.body)));
      } catch (const json::parse_error& error) {
        Reply(res, StatusError(400, "BadRequest", error.what()));
      }
      return;
    }
    if (req.method == "PATCH" && !path->name.empty()) {
      std::string type = req.get_header_value("Content-Type");
      PatchType patch_type;
      if (type.starts_with("application/json-patch+json")) {
        patch_type = PatchType::kJson;
      } else if (type.starts_with("application/merge-patch+json")) {
        patch_type = PatchType::kMerge;
      } else if (type.starts_with("application/strategic-merge-patch+json")) {
        patch_type = PatchType::kStrategicMerge;
      } else {
        Reply(res, StatusError(415, "UnsupportedMediaType",
                               fmt::format("the body of the request was in an unknown format - "
                                           "accepted media types include: "
                                           "application/json-patch+json, "
                                           "application/merge-patch+json, "
                                           "application/strategic-merge-patch+json; got {}",
                                           type)));
        return;
      }
      bool dry_run = Param(req, "dryRun") == "All";
      Reply(res,
            cluster_.Patch(path->resource, path->ns, path->name, patch_type, req.body, dry_run));
      return;
    }
    if (req.method == "DELETE" && !path->name.empty()) {
      Reply(res, cluster_.Delete(path->resource, path->ns, path->name));
      return;
    }
    Reply(res, StatusError(405, "MethodNotAllowed",
                           fmt::format("the server does not allow this method on the requested "
                                       "resource: {} {}",
                                       req.method, req.path)));
  };

  server.Get(".*", handle);
  server.Post(".*", handle);
  server.Put(".*", handle);
  server.Patch(".*", handle);
  server.Delete(".*", handle);
}

}  // namespace backout::emulators::kubernetes
