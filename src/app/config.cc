#include "app/config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "app/config_fields.h"
#include "app/config_kinds.h"
#include "app/config_signals.h"
#include "app/yaml_reader.h"

namespace backout::app {
namespace {

namespace fs = std::filesystem;

// The largest config file Load reads, 4 MiB. A config with thousands of services fits well
// under it. yaml-cpp needed about 4 bytes of memory per byte of a 100 MB YAML file, so the
// parse of a file at the limit should stay under 20 MB (an estimate from that one file).
constexpr size_t kMaxConfigFileBytes = size_t{4} << 20;
using config_internal::CheckName;
using config_internal::ParseContext;
using core::ErrorCode;

constexpr std::string_view kKnownRoles[] = {"admin",   "engineering-lead", "devops-engineer",
                                            "auditor", "viewer",           "ci"};

// The keys each block accepts. A new block adds its key here, a struct in config.h and a parse
// step below. A new provider or check kind goes to config_kinds.cc.
constexpr std::string_view kTopLevelKeys[] = {
    "listen", "database", "data_dir",      "tls",     "metrics", "http",  "policy",
    "users",  "services", "notifications", "signals", "review",  "ledger"};
constexpr std::string_view kTlsKeys[] = {"certificate", "private_key"};
constexpr std::string_view kMetricsKeys[] = {"token"};
constexpr std::string_view kPolicyKeys[] = {"separation_of_duties", "decider_roles",
                                            "executor_roles", "break_glass_approval_window",
                                            "closure"};
constexpr std::string_view kClosureKeys[] = {"root_cause", "recovered_or_no_go", "review",
                                             "action_items", "retroactive_approval"};
constexpr std::string_view kUserKeys[] = {"name", "roles", "services"};
constexpr std::string_view kServiceKeys[] = {
    "name",       "environment", "owner",  "tier",      "customer_facing",
    "depends_on", "provider",    "checks", "detection", "reconcile_interval"};

constexpr std::string_view kDefaultDataDir = "backout-data";
constexpr std::string_view kDatabaseFileName = "backout.db";

// The source lines of a service's depends_on items, kept for the checks that need every service.
struct DependencySource {
  std::vector<YamlValue> items;
};

std::optional<std::string> CheckRole(const std::string& role) {
  if (std::ranges::find(kKnownRoles, role) != std::ranges::end(kKnownRoles)) return std::nullopt;
  return fmt::format("unknown role '{}', expected one of: {}", role, fmt::join(kKnownRoles, ", "));
}

// Reads a name that must be unique among its siblings. `first_lines` maps each name seen so far
// to its line, and `what` names the entry in messages ("service" or "user").
std::optional<std::string> ReadUniqueName(ParseContext& context, const YamlFields& fields,
                                          std::map<std::string, int, std::less<>>& first_lines,
                                          std::string_view what) {
  YamlReader& reader = context.reader;
  const YamlValue* value = reader.Required(fields, "name");
  if (value == nullptr) return std::nullopt;
  auto name = reader.String(*value);
  if (!name) return std::nullopt;
  if (auto problem = CheckName(*name)) {
    reader.Fail(*value, *problem);
    return std::nullopt;
  }
  const auto [it, inserted] = first_lines.emplace(*name, value->line);
  if (!inserted) {
    reader.Fail(*value, fmt::format("duplicate {} name '{}' (first defined at line {})", what,
                                    *name, it->second));
    return std::nullopt;
  }
  return name;
}

std::optional<std::vector<std::string>> ReadRoles(ParseContext& context, const YamlValue& value) {
  auto roles = context.reader.StringList(value, CheckRole);
  if (!roles) return std::nullopt;
  if (roles->empty()) {
    context.reader.Fail(value, fmt::format("no roles given, expected at least one of: {}",
                                           fmt::join(kKnownRoles, ", ")));
    return std::nullopt;
  }
  return roles;
}

std::optional<TlsConfig> ParseTls(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kTlsKeys);
  if (!fields) return std::nullopt;
  const YamlValue* certificate = reader.Required(*fields, "certificate");
  const YamlValue* private_key = reader.Required(*fields, "private_key");
  if (certificate == nullptr || private_key == nullptr) return std::nullopt;

  auto certificate_ref = config_internal::ReadSecret(context, *certificate);
  auto private_key_ref = config_internal::ReadSecret(context, *private_key);
  if (!certificate_ref || !private_key_ref) return std::nullopt;
  return TlsConfig{*certificate_ref, *private_key_ref};
}

std::optional<MetricsConfig> ParseMetrics(ParseContext& context, const YamlValue& value) {
  auto fields = context.reader.Mapping(value, kMetricsKeys);
  if (!fields) return std::nullopt;
  MetricsConfig metrics;
  if (const YamlValue* token = fields->Find("token")) {
    metrics.token = config_internal::ReadSecret(context, *token);
    if (!metrics.token) return std::nullopt;
  }
  return metrics;
}

// Reads an optional boolean into `target`, leaving the default when the key is absent.
bool ReadOptionalBool(YamlReader& reader, const YamlFields& fields, std::string_view key,
                      bool& target) {
  const YamlValue* value = fields.Find(key);
  if (value == nullptr) return reader.ok();
  auto flag = reader.Bool(*value);
  if (flag) target = *flag;
  return flag.has_value();
}

std::optional<ClosureRequirements> ParseClosure(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kClosureKeys);
  if (!fields) return std::nullopt;
  ClosureRequirements closure;
  if (!ReadOptionalBool(reader, *fields, "root_cause", closure.root_cause) ||
      !ReadOptionalBool(reader, *fields, "recovered_or_no_go", closure.recovered_or_no_go) ||
      !ReadOptionalBool(reader, *fields, "review", closure.review) ||
      !ReadOptionalBool(reader, *fields, "action_items", closure.action_items) ||
      !ReadOptionalBool(reader, *fields, "retroactive_approval", closure.retroactive_approval)) {
    return std::nullopt;
  }
  return closure;
}

std::optional<PolicyConfig> ParsePolicy(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kPolicyKeys);
  if (!fields) return std::nullopt;

  PolicyConfig policy;
  if (!ReadOptionalBool(reader, *fields, "separation_of_duties", policy.separation_of_duties)) {
    return std::nullopt;
  }
  if (const YamlValue* roles = fields->Find("decider_roles")) {
    auto decider_roles = ReadRoles(context, *roles);
    if (!decider_roles) return std::nullopt;
    policy.decider_roles = std::move(*decider_roles);
  }
  if (const YamlValue* roles = fields->Find("executor_roles")) {
    auto executor_roles = ReadRoles(context, *roles);
    if (!executor_roles) return std::nullopt;
    policy.executor_roles = std::move(*executor_roles);
  }
  if (const YamlValue* window = fields->Find("break_glass_approval_window")) {
    auto duration = reader.Duration(*window);
    if (!duration) return std::nullopt;
    // PolicyConfig keeps the window in whole hours, so a remainder would be lost without notice.
    if (*duration % std::chrono::hours(1) != core::Duration::zero()) {
      reader.Fail(*window,
                  fmt::format("invalid window '{}': use a whole number of hours, such as 24h",
                              window->node.Scalar()));
      return std::nullopt;
    }
    policy.break_glass_approval_window = std::chrono::duration_cast<std::chrono::hours>(*duration);
  }
  if (const YamlValue* closure = fields->Find("closure")) {
    auto requirements = ParseClosure(context, *closure);
    if (!requirements) return std::nullopt;
    policy.closure = *requirements;
  }
  return policy;
}

std::optional<std::vector<CheckConfig>> ParseChecks(ParseContext& context, const YamlValue& value) {
  auto items = context.reader.List(value);
  if (!items) return std::nullopt;

  std::vector<CheckConfig> checks;
  std::map<std::string, int, std::less<>> first_lines;
  for (const YamlValue& item : *items) {
    auto check = config_internal::ParseCheck(context, item);
    if (!check) return std::nullopt;
    const auto [it, inserted] = first_lines.emplace(check->name, item.line);
    if (!inserted) {
      context.reader.Fail(item, fmt::format("duplicate check name '{}' (first defined at line {})",
                                            check->name, it->second));
      return std::nullopt;
    }
    checks.push_back(std::move(*check));
  }
  return checks;
}

// Warns about a service that no validation can find `recovered`: one whose provider cannot
// evaluate readiness without a key the binding lacks, or one without checks, because the
// provider's readiness alone never validates a service.
void WarnIfNeverRecovered(ParseContext& context, const YamlValue& service_value,
                          const YamlValue& provider_value, const ServiceConfig& service) {
  const auto missing = config_internal::MissingReadinessKeys(service.provider);
  if (!missing.empty()) {
    context.reader.Warn(
        provider_value,
        fmt::format("service {}: the {} provider has none of `{}`, so it cannot evaluate "
                    "readiness and no validation can find the service recovered; add one of them",
                    service.name, service.provider.kind, fmt::join(missing, "`, `")));
  }
  if (service.checks.empty()) {
    context.reader.Warn(
        service_value,
        fmt::format("service {} has no `checks`, so no validation can find it recovered, because "
                    "the provider's readiness alone never does; add a check of kind command, "
                    "http, prometheus or manual under `checks`",
                    service.name));
  }
}

// Reads one service. Its depends_on items are checked later, once every service is known, so
// their source lines go to `dependencies`.
std::optional<ServiceConfig> ParseService(ParseContext& context, const YamlValue& value,
                                          std::map<std::string, int, std::less<>>& first_lines,
                                          DependencySource& dependencies) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kServiceKeys);
  if (!fields) return std::nullopt;

  ServiceConfig service;
  auto name = ReadUniqueName(context, *fields, first_lines, "service");
  if (!name) return std::nullopt;
  service.name = std::move(*name);

  if (const YamlValue* environment = fields->Find("environment")) {
    auto text = reader.String(*environment);
    if (!text) return std::nullopt;
    if (auto problem = CheckName(*text)) {
      reader.Fail(*environment, *problem);
      return std::nullopt;
    }
    service.environment = std::move(*text);
  }
  if (const YamlValue* owner = fields->Find("owner")) {
    auto text = reader.String(*owner);
    if (!text) return std::nullopt;
    service.owner = std::move(*text);
  }
  if (const YamlValue* tier = fields->Find("tier")) {
    auto number = reader.Integer(*tier);
    if (!number) return std::nullopt;
    if (*number < 1) {
      reader.Fail(*tier, fmt::format("invalid tier {}: use a whole number of 1 or more", *number));
      return std::nullopt;
    }
    service.tier = *number;
  }
  if (!ReadOptionalBool(reader, *fields, "customer_facing", service.customer_facing)) {
    return std::nullopt;
  }
  if (const YamlValue* depends_on = fields->Find("depends_on")) {
    auto names = reader.StringList(*depends_on);
    auto items = reader.List(*depends_on);
    if (!names || !items) return std::nullopt;
    service.depends_on = std::move(*names);
    dependencies.items = std::move(*items);
  }

  const YamlValue* provider = reader.Required(*fields, "provider");
  if (provider == nullptr) return std::nullopt;
  auto binding = config_internal::ParseProvider(context, *provider);
  if (!binding) return std::nullopt;
  service.provider = std::move(*binding);

  if (const YamlValue* checks = fields->Find("checks")) {
    auto parsed = ParseChecks(context, *checks);
    if (!parsed) return std::nullopt;
    service.checks = std::move(*parsed);
  }
  if (const YamlValue* interval = fields->Find("reconcile_interval")) {
    auto parsed = config_internal::ReadReconcileInterval(context, *interval);
    if (!parsed) return std::nullopt;
    service.reconcile_interval = *parsed;
  }
  if (const YamlValue* detection = fields->Find("detection")) {
    auto parsed = config_internal::ParseDetection(context, *detection);
    if (!parsed) return std::nullopt;
    service.detection = std::move(*parsed);
  }
  WarnIfNeverRecovered(context, value, *provider, service);
  return service;
}

// Fails on the first depends_on item that names no service, then on the first cycle.
void CheckDependencies(ParseContext& context, const std::vector<ServiceConfig>& services,
                       const std::vector<DependencySource>& sources) {
  YamlReader& reader = context.reader;
  std::map<std::string_view, size_t, std::less<>> index_of;
  for (size_t i = 0; i < services.size(); ++i) index_of.emplace(services[i].name, i);

  for (size_t i = 0; i < services.size(); ++i) {
    for (size_t j = 0; j < services[i].depends_on.size(); ++j) {
      if (!index_of.contains(services[i].depends_on[j])) {
        reader.Fail(sources[i].items[j],
                    fmt::format("unknown service '{}': it is not defined under services",
                                services[i].depends_on[j]));
        return;
      }
    }
  }

  // Depth-first search from each service in file order. An edge to a service still on the path
  // closes a cycle, which is reported at that edge's depends_on item.
  enum class Mark { kNew, kOnPath, kDone };
  std::vector<Mark> marks(services.size(), Mark::kNew);
  std::vector<size_t> path;
  std::function<bool(size_t)> visit = [&](size_t service) {
    marks[service] = Mark::kOnPath;
    path.push_back(service);
    for (size_t j = 0; j < services[service].depends_on.size(); ++j) {
      const size_t next = index_of.at(services[service].depends_on[j]);
      if (marks[next] == Mark::kOnPath) {
        std::vector<std::string_view> cycle;
        for (auto it = std::ranges::find(path, next); it != path.end(); ++it) {
          cycle.push_back(services[*it].name);
        }
        cycle.push_back(services[next].name);
        reader.Fail(sources[service].items[j],
                    fmt::format("dependency cycle: {}", fmt::join(cycle, " -> ")));
        return false;
      }
      if (marks[next] == Mark::kNew && !visit(next)) return false;
    }
    path.pop_back();
    marks[service] = Mark::kDone;
    return true;
  };
  for (size_t i = 0; i < services.size(); ++i) {
    if (marks[i] == Mark::kNew && !visit(i)) return;
  }
}

std::optional<std::vector<ServiceConfig>> ParseServices(ParseContext& context,
                                                        const YamlValue& value) {
  auto items = context.reader.List(value);
  if (!items) return std::nullopt;

  std::vector<ServiceConfig> services;
  std::vector<DependencySource> sources;
  std::map<std::string, int, std::less<>> first_lines;
  for (const YamlValue& item : *items) {
    DependencySource source;
    auto service = ParseService(context, item, first_lines, source);
    if (!service) return std::nullopt;
    services.push_back(std::move(*service));
    sources.push_back(std::move(source));
  }

  CheckDependencies(context, services, sources);
  if (!context.reader.ok()) return std::nullopt;
  return services;
}

std::optional<std::vector<UserConfig>> ParseUsers(ParseContext& context, const YamlValue& value,
                                                  const std::vector<ServiceConfig>& services) {
  YamlReader& reader = context.reader;
  auto items = reader.List(value);
  if (!items) return std::nullopt;

  const auto check_service = [&](const std::string& name) -> std::optional<std::string> {
    const bool known =
        std::ranges::any_of(services, [&](const ServiceConfig& s) { return s.name == name; });
    if (known) return std::nullopt;
    return fmt::format("unknown service '{}': it is not defined under services", name);
  };

  std::vector<UserConfig> users;
  std::map<std::string, int, std::less<>> first_lines;
  for (const YamlValue& item : *items) {
    auto fields = reader.Mapping(item, kUserKeys);
    if (!fields) return std::nullopt;

    UserConfig user;
    auto name = ReadUniqueName(context, *fields, first_lines, "user");
    if (!name) return std::nullopt;
    user.name = std::move(*name);

    const YamlValue* roles_value = reader.Required(*fields, "roles");
    if (roles_value == nullptr) return std::nullopt;
    auto roles = ReadRoles(context, *roles_value);
    if (!roles) return std::nullopt;
    user.roles = std::move(*roles);

    if (const YamlValue* services_value = fields->Find("services")) {
      auto names = reader.StringList(*services_value, check_service);
      if (!names) return std::nullopt;
      user.services = std::move(*names);
    }
    users.push_back(std::move(user));
  }
  return users;
}

// Reads the top-level mapping into `config`. Fields that others default from come first:
// data_dir before database, services before users.
void ParseTopLevel(ParseContext& context, const YamlValue& root, Config& config) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(root, kTopLevelKeys);
  if (!fields) return;

  if (const YamlValue* value = fields->Find("listen")) {
    auto text = reader.String(*value);
    if (!text) return;
    auto address = config_internal::ParseListenAddress(*text);
    if (!address) {
      reader.Fail(*value, address.error().message);
      return;
    }
    config.listen = *address;
  }

  std::error_code error;
  config.data_dir = fs::absolute(context.base_dir / kDefaultDataDir, error).lexically_normal();
  if (error) {
    reader.Fail(root.line, "data_dir",
                fmt::format("cannot make the default data folder absolute: {}", error.message()));
    return;
  }
  if (const YamlValue* value = fields->Find("data_dir")) {
    auto path = config_internal::ReadPath(context, *value);
    if (!path) return;
    config.data_dir = *path;
  }

  config.database = fmt::format("sqlite:{}", (config.data_dir / kDatabaseFileName).string());
  if (const YamlValue* value = fields->Find("database")) {
    auto text = reader.String(*value);
    if (!text) return;
    auto url = config_internal::ParseDatabase(*text, context.base_dir);
    if (!url) {
      reader.Fail(*value, url.error().message);
      return;
    }
    config.database = *url;
  }

  if (const YamlValue* value = fields->Find("tls")) {
    config.tls = ParseTls(context, *value);
    if (!config.tls) return;
  }
  if (const YamlValue* value = fields->Find("metrics")) {
    auto metrics = ParseMetrics(context, *value);
    if (!metrics) return;
    config.metrics = std::move(*metrics);
  }
  if (const YamlValue* value = fields->Find("http")) {
    auto http = config_internal::ParseHttp(context, *value);
    if (!http) return;
    config.http = *http;
  }
  if (const YamlValue* value = fields->Find("policy")) {
    auto policy = ParsePolicy(context, *value);
    if (!policy) return;
    config.policy = std::move(*policy);
  }
  if (const YamlValue* value = fields->Find("services")) {
    auto services = ParseServices(context, *value);
    if (!services) return;
    config.services = std::move(*services);
  }
  if (const YamlValue* value = fields->Find("users")) {
    auto users = ParseUsers(context, *value, config.services);
    if (!users) return;
    config.users = std::move(*users);
  }
  if (const YamlValue* value = fields->Find("notifications")) {
    auto notifications = config_internal::ParseNotifications(context, *value);
    if (!notifications) return;
    config.notifications = std::move(*notifications);
  }
  if (const YamlValue* value = fields->Find("signals")) {
    auto signals = config_internal::ParseSignals(context, *value);
    if (!signals) return;
    config.signals = std::move(*signals);
  }
  if (const YamlValue* value = fields->Find("review")) {
    auto review = config_internal::ParseReview(context, *value);
    if (!review) return;
    config.review = std::move(*review);
  }
  if (const YamlValue* value = fields->Find("ledger")) {
    auto ledger = config_internal::ParseLedger(context, *value);
    if (!ledger) return;
    config.ledger = *ledger;
  }
}

// Parses the YAML text into its single document. Syntax errors name the line yaml-cpp reports.
core::Result<YAML::Node> LoadDocument(std::string_view text, std::string_view display_name) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::DeepRecursion& error) {
    // yaml-cpp's message for this is "bad file", which hides the cause. depth() is the limit
    // the parser reached, 500 levels in yaml-cpp 0.7.
    return core::MakeError(ErrorCode::kInvalidArgument,
                           "{}:{}: invalid YAML: nested too deeply, past the parser's maximum of "
                           "{} levels; a config file needs fewer than 10",
                           display_name, error.mark.is_null() ? 1 : error.mark.line + 1,
                           error.depth());
  } catch (const YAML::Exception& error) {
    return core::MakeError(ErrorCode::kInvalidArgument, "{}:{}: invalid YAML: {}", display_name,
                           error.mark.is_null() ? 1 : error.mark.line + 1, error.msg);
  }

  if (documents.empty() || (documents.size() == 1 && documents[0].IsNull())) {
    return core::MakeError(ErrorCode::kInvalidArgument,
                           "{}:1: the file is empty: give at least the services to manage",
                           display_name);
  }
  if (documents.size() > 1) {
    return core::MakeError(ErrorCode::kInvalidArgument,
                           "{}:{}: the file holds {} YAML documents: put the whole configuration "
                           "in one",
                           display_name, documents[1].Mark().line + 1, documents.size());
  }
  return documents[0];
}

}  // namespace

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::span<const std::string_view> KnownRoles() { return kKnownRoles; }

std::span<const std::string_view> NotificationEvents() {
  static constexpr std::string_view kEvents[] = {
      "incident.opened", "decision.needed",  "rollback.started",    "rollback.finished",
      "rollback.failed", "break_glass.used", "rollback.discovered", "action_item.overdue"};
  return kEvents;
}

core::Result<Config> Config::Parse(std::string_view text, std::string_view display_name,
                                   const fs::path& base_dir) {
  auto document = LoadDocument(text, display_name);
  if (!document) return std::unexpected(document.error());

  YamlReader reader{std::string(display_name)};
  ParseContext context{reader, base_dir};
  const YamlValue root = YamlReader::Root(*document);

  // Secrets first, so that no later message can quote one written inline.
  config_internal::CheckSecretReferences(context, root);
  if (!reader.ok()) return std::unexpected(reader.error());

  Config config;
  ParseTopLevel(context, root, config);
  if (!reader.ok()) return std::unexpected(reader.error());

  config.source_name = std::string(display_name);
  config.source_text = std::string(text);
  config.warnings = reader.warnings();
  return config;
}

core::Result<Config> Config::Load(const fs::path& path) {
  // O_NONBLOCK keeps the open of a FIFO from waiting for a writer. fstat then rejects anything
  // that is not a regular file, such as /dev/zero, which would otherwise be read without end.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    std::error_code error(errno, std::generic_category());
    return core::MakeError(ErrorCode::kNotFound, "cannot open config file {}: {}", path.string(),
                           error.message());
  }
  struct stat info {};
  const bool stat_failed = ::fstat(fd, &info) != 0;
  if (stat_failed || !S_ISREG(info.st_mode)) {
    ::close(fd);
    if (!stat_failed && S_ISDIR(info.st_mode)) {
      return core::MakeError(
          ErrorCode::kInvalidArgument,
          "cannot read config file {}: it is a folder, give the YAML file's path", path.string());
    }
    return core::MakeError(ErrorCode::kInvalidArgument,
                           "config file {} is not a regular file; give the path of the YAML file",
                           path.string());
  }

  // Reads at most one byte past the limit, so a file that grows while it is read stays bounded.
  std::string content;
  char buffer[65536];
  bool read_failed = false;
  while (content.size() <= kMaxConfigFileBytes) {
    const ssize_t count = ::read(fd, buffer, sizeof(buffer));
    if (count == 0) break;
    if (count < 0) {
      if (errno == EINTR) continue;
      read_failed = true;
      break;
    }
    content.append(buffer, static_cast<size_t>(count));
  }
  ::close(fd);
  if (read_failed) {
    return core::MakeError(ErrorCode::kInvalidArgument, "cannot read config file {}",
                           path.string());
  }
  if (content.size() > kMaxConfigFileBytes) {
    return core::MakeError(ErrorCode::kInvalidArgument,
                           "config file {} is larger than {} bytes, the maximum for a config file; "
                           "check that the path names the config file",
                           path.string(), kMaxConfigFileBytes);
  }
  return Parse(content, path.string(), path.parent_path());
}

const ServiceConfig* Config::FindService(std::string_view name) const {
  for (const ServiceConfig& service : services) {
    if (service.name == name) return &service;
  }
  return nullptr;
}

}  // namespace backout::app
