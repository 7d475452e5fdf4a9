#include "providers/git/git_repository.h"

#include <arpa/inet.h>
#include <git2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/shared_library.h"
#include "providers/git/known_hosts.h"

namespace backout::providers::git {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRemoteName = "origin";

// Every libgit2 function this file calls.
#define BACKOUT_LIBGIT2_FUNCTIONS(X)       \
  X(git_libgit2_init)                      \
  X(git_error_last)                        \
  X(git_error_set_str)                     \
  X(git_oid_equal)                         \
  X(git_oid_fromstrn)                      \
  X(git_oid_tostr)                         \
  X(git_repository_free)                   \
  X(git_repository_init)                   \
  X(git_repository_open_bare)              \
  X(git_remote_create)                     \
  X(git_remote_fetch)                      \
  X(git_remote_free)                       \
  X(git_remote_lookup)                     \
  X(git_remote_ls)                         \
  X(git_remote_push)                       \
  X(git_remote_set_url)                    \
  X(git_remote_url)                        \
  X(git_credential_ssh_key_memory_new)     \
  X(git_credential_username_new)           \
  X(git_credential_userpass_plaintext_new) \
  X(git_reference_create)                  \
  X(git_reference_free)                    \
  X(git_commit_author)                     \
  X(git_commit_committer)                  \
  X(git_commit_create)                     \
  X(git_commit_free)                       \
  X(git_commit_id)                         \
  X(git_commit_lookup)                     \
  X(git_commit_message)                    \
  X(git_commit_parent)                     \
  X(git_commit_parent_id)                  \
  X(git_commit_parentcount)                \
  X(git_commit_summary)                    \
  X(git_commit_tree)                       \
  X(git_graph_descendant_of)               \
  X(git_revwalk_free)                      \
  X(git_revwalk_new)                       \
  X(git_revwalk_next)                      \
  X(git_revwalk_push)                      \
  X(git_revwalk_simplify_first_parent)     \
  X(git_tree_create_updated)               \
  X(git_tree_dup)                          \
  X(git_tree_entry_bypath)                 \
  X(git_tree_entry_filemode)               \
  X(git_tree_entry_free)                   \
  X(git_tree_entry_id)                     \
  X(git_tree_entry_type)                   \
  X(git_tree_free)                         \
  X(git_tree_id)                           \
  X(git_tree_lookup)                       \
  X(git_blob_create_from_buffer)           \
  X(git_blob_free)                         \
  X(git_blob_lookup)                       \
  X(git_blob_rawcontent)                   \
  X(git_blob_rawsize)                      \
  X(git_merge_trees)                       \
  X(git_index_conflict_iterator_free)      \
  X(git_index_conflict_iterator_new)       \
  X(git_index_conflict_next)               \
  X(git_index_free)                        \
  X(git_index_has_conflicts)               \
  X(git_index_write_tree_to)               \
  X(git_signature_free)                    \
  X(git_signature_new)                     \
  X(git_diff_free)                         \
  X(git_diff_get_delta)                    \
  X(git_diff_num_deltas)                   \
  X(git_diff_tree_to_tree)

struct Libgit2 {
  BACKOUT_LIBGIT2_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION)
};

// Loads libgit2 and runs its global initialization on the first call, and returns the same result
// on later calls. libgit2 brings mbed TLS, libssh2, http-parser and PCRE2, which a server without
// a git binding never needs, so the binary does not link it.
const core::Result<Libgit2>& LoadFunctions() {
  static const core::Result<Libgit2> loaded = []() -> core::Result<Libgit2> {
    auto opened = core::SharedLibrary::Open(BACKOUT_LIBGIT2_SONAME, BACKOUT_LIBGIT2_PACKAGE,
                                            "the git provider");
    if (!opened) return std::unexpected(opened.error());
    core::SharedLibrary& library = *opened;
    Libgit2 functions;
    BACKOUT_LIBGIT2_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
    if (auto resolved = library.CheckResolved(); !resolved) {
      return std::unexpected(resolved.error());
    }
    if (functions.git_libgit2_init() < 0) {
      const git_error* error = functions.git_error_last();
      return core::MakeError(
          core::ErrorCode::kUnavailable, "cannot initialize {}: {}", BACKOUT_LIBGIT2_SONAME,
          error != nullptr && error->message != nullptr ? error->message : "no reason given");
    }
    return functions;
  }();
  return loaded;
}

// Returns the loaded functions. Only code that runs on a GitRepository or in its fetch and push
// callbacks calls this, and GitRepository::Open fails when libgit2 cannot be loaded, so the table
// exists whenever a repository does.
const Libgit2& Git() { return *LoadFunctions(); }

// Owned libgit2 objects, freed by their own free function.
template <typename T, void (*Libgit2::*Free)(T*)>
struct Deleter {
  void operator()(T* object) const { (Git().*Free)(object); }
};
template <typename T, void (*Libgit2::*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

using Commit = Owned<git_commit, &Libgit2::git_commit_free>;
using Tree = Owned<git_tree, &Libgit2::git_tree_free>;
using TreeEntry = Owned<git_tree_entry, &Libgit2::git_tree_entry_free>;
using Blob = Owned<git_blob, &Libgit2::git_blob_free>;
using Remote = Owned<git_remote, &Libgit2::git_remote_free>;
using Revwalk = Owned<git_revwalk, &Libgit2::git_revwalk_free>;
using Index = Owned<git_index, &Libgit2::git_index_free>;
using ConflictIterator =
    Owned<git_index_conflict_iterator, &Libgit2::git_index_conflict_iterator_free>;
using Signature = Owned<git_signature, &Libgit2::git_signature_free>;
using Reference = Owned<git_reference, &Libgit2::git_reference_free>;
using Diff = Owned<git_diff, &Libgit2::git_diff_free>;

std::string LastError() {
  const git_error* error = Git().git_error_last();
  return error != nullptr && error->message != nullptr ? error->message : "unknown libgit2 error";
}

std::string ToHex(const git_oid& oid) {
  char text[GIT_OID_HEXSZ + 1] = {};
  Git().git_oid_tostr(text, sizeof(text), &oid);
  return text;
}

core::Result<git_oid> ParseOid(std::string_view id) {
  git_oid oid;
  if (id.size() != GIT_OID_HEXSZ || Git().git_oid_fromstrn(&oid, id.data(), id.size()) != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "'{}' is not a full commit id", id);
  }
  return oid;
}

core::Time ToTime(const git_time& time) { return core::Time(std::chrono::seconds(time.time)); }

// The payload of one fetch's or push's callbacks. libgit2 requests credentials again after each
// rejection, so the credential types already offered are recorded to stop a loop.
struct CallbackState {
  const GitSettings* settings = nullptr;
  unsigned int offered_types = 0;  // GIT_CREDENTIAL_* bits of the credentials already offered
  bool repeated = false;           // libgit2 requested a credential type again after a rejection
  std::string rejection;           // the remote's status for a reference it did not update
  std::string host_key_rejection;  // why the ssh server's host key was rejected
};

// A failed fetch or push: the error code for the caller and the message with its fix.
struct TransferFailure {
  core::ErrorCode code;
  std::string message;
};

// Describes a fetch or push that failed with libgit2's return `code`. A rejected, missing or
// unusable credential gets its own fix, so the person does not chase the network instead. Such
// a failure is kFailedPrecondition, which the job runner does not retry, because the same key
// fails again until the binding is fixed and reloaded. It is not kUnauthenticated, which the API
// would return as 401 about the caller's own token. Other failures are kUnavailable.
TransferFailure DescribeTransferFailure(int code, const CallbackState& state,
                                        std::string_view access) {
  if (!state.host_key_rejection.empty()) {
    return {core::ErrorCode::kUnavailable, state.host_key_rejection};
  }
  const GitSettings& settings = *state.settings;
  std::string error = LastError();
  if (code == GIT_ECERTIFICATE) {
    return {core::ErrorCode::kUnavailable,
            fmt::format(
                "the remote's TLS certificate is not trusted ({}); give the CA that signed it in "
                "the provider's ca_file, or fix the server's certificate",
                error)};
  }
  // libgit2 1.5.1 reads $HOME/.ssh/known_hosts for every ssh connection, even when the binding
  // sets known_hosts, and fails with "error loading known_hosts: Failed to parse known hosts
  // file" when libssh2 1.10 cannot parse a line of it.
  if (error.find("known_hosts") != std::string::npos) {
    const char* home = std::getenv("HOME");
    const std::string path = fmt::format("{}/.ssh/known_hosts", home != nullptr ? home : "$HOME");
    std::string fix =
        settings.known_hosts.empty()
            ? fmt::format(
                  "repair or remove the lines of {} that are not in known_hosts "
                  "format; the provider's known_hosts setting does not avoid this file",
                  path)
            : fmt::format(
                  "repair or remove the lines of {} that are not in known_hosts format; "
                  "libgit2 reads it even though the binding sets known_hosts",
                  path);
    return {core::ErrorCode::kUnavailable,
            fmt::format("libgit2 could not read {}, which it reads for every ssh connection "
                        "({}); {}",
                        path, error, fix)};
  }
  // libssh2 1.10 reports a key it cannot decrypt or parse as "Private key unpack failed (correct
  // password?)", "Unable to extract public key from private key ..." or "Error parsing PEM: ...".
  const bool key_unusable = error.find("rivate key") != std::string::npos ||
                            error.find("PEM") != std::string::npos ||
                            error.find("passphrase") != std::string::npos;
  if (!settings.ssh_key.empty() && key_unusable) {
    return {core::ErrorCode::kFailedPrecondition,
            fmt::format("the private key that provider.credentials.ssh_key references cannot be "
                        "used ({}); check that it is an OpenSSH or PEM private key and that "
                        "ssh_passphrase references its passphrase",
                        error)};
  }
  const bool refused = code == GIT_EAUTH || state.repeated ||
                       error.find("authentication") != std::string::npos ||
                       error.find("authenticate") != std::string::npos;
  if (refused) {
    return {core::ErrorCode::kFailedPrecondition,
            fmt::format(
                "the remote rejected the credentials or asked for ones the binding does not give "
                "({}); check the secrets that provider.credentials references (username and "
                "password for https, ssh_key and ssh_passphrase for ssh) and that the account may "
                "{} the repository, then reload the configuration",
                error, access)};
  }
  return {core::ErrorCode::kUnavailable,
          fmt::format("{}; check the URL, the network and the credentials", error)};
}

// Offers the binding's credential of a type that libgit2 allows. Each type is offered at most
// once per connection, because the binding has one credential of each type and the remote
// rejects it again.
int AcquireCredential(git_credential** out, const char* url, const char* username_from_url,
                      unsigned int allowed_types, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const GitSettings& settings = *state->settings;
  std::string user = !settings.username.empty()                           ? settings.username
                     : username_from_url != nullptr && *username_from_url ? username_from_url
                                                                          : "git";
  auto offer = [&](unsigned int type) {
    if ((state->offered_types & type) != 0) {
      state->repeated = true;
      Git().git_error_set_str(GIT_ERROR_NET, "the remote rejected the configured credentials");
      return false;
    }
    state->offered_types |= type;
    return true;
  };
  if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0 && !settings.password.empty()) {
    if (!offer(GIT_CREDENTIAL_USERPASS_PLAINTEXT)) return GIT_EAUTH;
    return Git().git_credential_userpass_plaintext_new(out, user.c_str(),
                                                       settings.password.c_str());
  }
  if ((allowed_types & GIT_CREDENTIAL_SSH_MEMORY) != 0 && !settings.ssh_key.empty()) {
    if (!offer(GIT_CREDENTIAL_SSH_MEMORY)) return GIT_EAUTH;
    return Git().git_credential_ssh_key_memory_new(
        out, user.c_str(), nullptr, settings.ssh_key.c_str(),
        settings.ssh_passphrase.empty() ? nullptr : settings.ssh_passphrase.c_str());
  }
  if ((allowed_types & GIT_CREDENTIAL_USERNAME) != 0) {
    if (!offer(GIT_CREDENTIAL_USERNAME)) return GIT_EAUTH;
    return Git().git_credential_username_new(out, user.c_str());
  }
  Git().git_error_set_str(
      GIT_ERROR_NET, "the remote requires credentials the provider's `credentials` do not give");
  return GIT_EAUTH;
}

// Records why the host key of an ssh server is rejected, in the state and as libgit2's error.
int RejectHostKey(CallbackState& state, std::string reason) {
  Git().git_error_set_str(GIT_ERROR_SSH, reason.c_str());
  state.host_key_rejection = std::move(reason);
  return GIT_ECERTIFICATE;
}

// Decides whether to trust an ssh server's host key. With the binding's `known_hosts` the key
// must be listed there for `host` on the repository's port, whatever libgit2 decided. Without
// it, libgit2 1.5.1 and later have checked the key against $HOME/.ssh/known_hosts, and `valid`
// is that check's result.
int CheckHostKey(const git_cert_hostkey& cert, int valid, const char* host, CallbackState& state) {
  const GitSettings& settings = *state.settings;
  const std::string name = KnownHostName(host, settings.ssh_port);
  if ((cert.type & GIT_CERT_SSH_RAW) == 0 || cert.hostkey == nullptr) {
    return RejectHostKey(state, fmt::format("libgit2 passed no ssh host key for {}, so it "
                                            "cannot be checked against known_hosts",
                                            name));
  }
  const std::string_view key(cert.hostkey, cert.hostkey_len);
  const std::string offered =
      fmt::format("the server offered {} {}", KeyTypeName(key), KeyFingerprint(key));
  const std::string keyscan =
      settings.ssh_port == 22
          ? fmt::format("ssh-keyscan -t {} {}", KeyTypeName(key), host)
          : fmt::format("ssh-keyscan -p {} -t {} {}", settings.ssh_port, KeyTypeName(key), host);

  if (settings.known_hosts.empty()) {
    if (valid != 0) return 0;
    const char* home = std::getenv("HOME");
    return RejectHostKey(
        state, fmt::format("the ssh host key of {} is not in {}/.ssh/known_hosts, which libgit2 "
                           "checks when the binding sets no known_hosts, or differs from the "
                           "key listed there ({}); set the provider's known_hosts to a file "
                           "that lists the server's key, as `{}` prints it, after checking its "
                           "fingerprint with the server's administrator",
                           name, home != nullptr ? home : "$HOME", offered, keyscan));
  }

  const HostKeyCheck check = settings.known_host_keys.Check(host, settings.ssh_port, key);
  switch (check.status) {
    case HostKeyStatus::kTrusted:
      return 0;
    case HostKeyStatus::kChanged:
      return RejectHostKey(
          state, fmt::format("the ssh host key of {} differs from the key on line {} of {} "
                             "({}); the server's key was replaced or the connection is "
                             "intercepted. Check the new fingerprint with the server's "
                             "administrator, then replace that line",
                             name, check.line, settings.known_hosts, offered));
    case HostKeyStatus::kRevoked:
      return RejectHostKey(
          state, fmt::format("the ssh host key of {} is marked @revoked on line {} of {} ({}); "
                             "the server must use another key",
                             name, check.line, settings.known_hosts, offered));
    case HostKeyStatus::kUnknown:
      break;
  }
  // NOTE: libgit2 1.5 lets libssh2 1.10 pick the host key type: the first of ECDSA, Ed25519 and
  // RSA that the server has. A file that lists only another of the server's types fails here.
  std::string listed = check.other_key_types.empty()
                           ? fmt::format("{} lists no key for it", settings.known_hosts)
                           : fmt::format("{} lists only {} keys for it", settings.known_hosts,
                                         fmt::join(check.other_key_types, ", "));
  return RejectHostKey(state,
                       fmt::format("the ssh host key of {} is unknown: {} ({}); add the "
                                   "server's key to that file, as `{}` prints it, after checking "
                                   "its fingerprint with the server's administrator",
                                   name, listed, offered, keyscan));
}

// Checks the server's identity. An ssh host key goes to CheckHostKey. A TLS certificate that
// libgit2's own checks rejected is trusted when it was issued for `host` by one of the CA
// certificates of the binding's `ca_file`. libgit2 hands over only the server's own certificate,
// so the CA file must hold the certificate that signed it directly.
int CheckCertificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto& state = *static_cast<CallbackState*>(payload);
  if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    return CheckHostKey(*reinterpret_cast<const git_cert_hostkey*>(cert), valid, host, state);
  }
  if (valid != 0) return 0;
  const GitSettings& settings = *state.settings;
  // GIT_PASSTHROUGH leaves the decision to libgit2's own check, which rejected it. libgit2 1.5
  // proceeds on any return value that is not negative, despite the header's "> 0" wording.
  if (settings.ca_pem.empty() || cert->cert_type != GIT_CERT_X509) return GIT_PASSTHROUGH;
  const auto* x509 = reinterpret_cast<const git_cert_x509*>(cert);

  auto fail = [&](std::string reason) {
    Git().git_error_set_str(
        GIT_ERROR_SSL,
        fmt::format("the certificate of {} is not trusted: {}", host, reason).c_str());
    return GIT_ECERTIFICATE;
  };
  const auto* der = static_cast<const unsigned char*>(x509->data);
  std::unique_ptr<X509, decltype(&X509_free)> leaf(
      d2i_X509(nullptr, &der, static_cast<long>(x509->len)), X509_free);
  if (!leaf) return fail("the server sent a certificate that cannot be parsed");

  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> pem(
      BIO_new_mem_buf(settings.ca_pem.data(), static_cast<int>(settings.ca_pem.size())), BIO_free);
  int loaded = 0;
  while (X509* ca = PEM_read_bio_X509(pem.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store.get(), ca) == 1) ++loaded;
    X509_free(ca);
  }
  ERR_clear_error();  // the loop ends on an expected end-of-data error
  if (loaded == 0) return fail(fmt::format("{} holds no usable certificate", settings.ca_file));

  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> context(X509_STORE_CTX_new(),
                                                                          X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(context.get(), store.get(), leaf.get(), nullptr) != 1) {
    return fail("the certificate check could not start");
  }
  X509_VERIFY_PARAM* params = X509_STORE_CTX_get0_param(context.get());
  unsigned char address[16];
  const bool is_ip =
      inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
  if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(params, host) != 1
            : X509_VERIFY_PARAM_set1_host(params, host, 0) != 1) {
    return fail("the host name cannot be checked");
  }
  if (X509_verify_cert(context.get()) != 1) {
    int error = X509_STORE_CTX_get_error(context.get());
    return fail(fmt::format("{} (checked against {}); put the CA that signed it in ca_file",
                            X509_verify_cert_error_string(error), settings.ca_file));
  }
  return 0;
}

std::string SafeRefName(std::string_view key) {
  std::string safe;
  for (char c : key.substr(0, 100)) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
    safe += plain ? c : '_';
  }
  return safe.empty() ? "_" : safe;
}

core::Result<Commit> LookupCommit(git_repository* repository, std::string_view id) {
  auto oid = ParseOid(id);
  if (!oid) return std::unexpected(oid.error());
  git_commit* commit = nullptr;
  if (Git().git_commit_lookup(&commit, repository, &*oid) != 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "commit {} not found in the work clone: {}",
                           id, LastError());
  }
  return Commit(commit);
}

core::Result<Tree> CommitTree(const git_commit* commit) {
  git_tree* tree = nullptr;
  if (Git().git_commit_tree(&tree, commit) != 0) {
    return core::MakeError(core::ErrorCode::kCorruption, "cannot read the tree of commit {}: {}",
                           ToHex(*Git().git_commit_id(commit)), LastError());
  }
  return Tree(tree);
}

// The blob id of `path` in `tree`, or nullopt when the tree has no such file.
std::optional<git_oid> BlobAt(const git_tree* tree, std::string_view path) {
  git_tree_entry* entry = nullptr;
  if (Git().git_tree_entry_bypath(&entry, tree, std::string(path).c_str()) != 0)
    return std::nullopt;
  TreeEntry owned(entry);
  if (Git().git_tree_entry_type(entry) != GIT_OBJECT_BLOB) return std::nullopt;
  return *Git().git_tree_entry_id(entry);
}

core::Result<std::string> BlobText(git_repository* repository, const git_oid& oid) {
  git_blob* blob = nullptr;
  if (Git().git_blob_lookup(&blob, repository, &oid) != 0) {
    return core::MakeError(core::ErrorCode::kCorruption, "cannot read blob {}: {}", ToHex(oid),
                           LastError());
  }
  Blob owned(blob);
  const char* data = static_cast<const char*>(Git().git_blob_rawcontent(blob));
  return std::string(data, static_cast<size_t>(Git().git_blob_rawsize(blob)));
}

CommitInfo Describe(const git_commit* commit) {
  CommitInfo info;
  info.id = ToHex(*Git().git_commit_id(commit));
  const char* summary = Git().git_commit_summary(const_cast<git_commit*>(commit));
  info.summary = summary != nullptr ? summary : "";
  const char* message = Git().git_commit_message(commit);
  info.message = message != nullptr ? message : "";
  const git_signature* author = Git().git_commit_author(commit);
  info.author = fmt::format("{} <{}>", author->name, author->email);
  info.time = ToTime(Git().git_commit_committer(commit)->when);
  if (Git().git_commit_parentcount(commit) > 0)
    info.first_parent = ToHex(*Git().git_commit_parent_id(commit, 0));
  return info;
}

}  // namespace

core::Result<void> LoadLibgit2() {
  const core::Result<Libgit2>& loaded = LoadFunctions();
  if (!loaded) return std::unexpected(loaded.error());
  return {};
}

core::Result<GitRepository> GitRepository::Open(const GitSettings& settings) {
  if (auto loaded = LoadLibgit2(); !loaded) return std::unexpected(loaded.error());
  std::string display = DisplayUrl(settings.repository);

  git_repository* repository = nullptr;
  if (Git().git_repository_open_bare(&repository, settings.work_dir.c_str()) != 0) {
    std::error_code error;
    if (fs::exists(settings.work_dir, error) && !fs::is_empty(settings.work_dir, error)) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "work_dir {} exists but is not a bare git repository; give the git "
                             "provider an empty folder of its own",
                             settings.work_dir);
    }
    fs::create_directories(settings.work_dir, error);
    if (Git().git_repository_init(&repository, settings.work_dir.c_str(), /*is_bare=*/1) != 0) {
      return core::MakeError(core::ErrorCode::kUnavailable,
                             "cannot create the work clone in {}: {}; check that the folder is "
                             "writable",
                             settings.work_dir, LastError());
    }
  }
  GitRepository opened(repository, settings);

  git_remote* remote = nullptr;
  int found = Git().git_remote_lookup(&remote, repository, kRemoteName);
  if (found == GIT_ENOTFOUND) {
    if (Git().git_remote_create(&remote, repository, kRemoteName, settings.repository.c_str()) !=
        0) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "cannot use repository {}: {}",
                             display, LastError());
    }
  } else if (found != 0) {
    return core::MakeError(core::ErrorCode::kCorruption, "cannot read remote origin in {}: {}",
                           settings.work_dir, LastError());
  } else if (std::strcmp(Git().git_remote_url(remote), settings.repository.c_str()) != 0) {
    if (Git().git_remote_set_url(repository, kRemoteName, settings.repository.c_str()) != 0) {
      Git().git_remote_free(remote);
      return core::MakeError(core::ErrorCode::kUnavailable, "cannot set remote origin to {}: {}",
                             display, LastError());
    }
  }
  Git().git_remote_free(remote);
  return opened;
}

GitRepository::GitRepository(git_repository* repository, const GitSettings& settings)
    : repository_(repository), settings_(&settings) {}

GitRepository::GitRepository(GitRepository&& other) noexcept
    : repository_(std::exchange(other.repository_, nullptr)), settings_(other.settings_) {}

GitRepository& GitRepository::operator=(GitRepository&& other) noexcept {
  if (this != &other) {
    if (repository_ != nullptr) Git().git_repository_free(repository_);
    repository_ = std::exchange(other.repository_, nullptr);
    settings_ = other.settings_;
  }
  return *this;
}

GitRepository::~GitRepository() {
  if (repository_ != nullptr) Git().git_repository_free(repository_);
}

core::Result<std::string> GitRepository::Fetch() {
  const std::string display = DisplayUrl(settings_->repository);
  git_remote* raw_remote = nullptr;
  if (Git().git_remote_lookup(&raw_remote, repository_, kRemoteName) != 0) {
    return core::MakeError(core::ErrorCode::kCorruption, "remote origin missing in {}: {}",
                           settings_->work_dir, LastError());
  }
  Remote remote(raw_remote);

  CallbackState state;
  state.settings = settings_;
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.callbacks.credentials = AcquireCredential;
  options.callbacks.certificate_check = CheckCertificate;
  options.callbacks.payload = &state;
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  std::string refspec = fmt::format("+refs/heads/{0}:refs/remotes/origin/{0}", settings_->branch);
  char* refspecs[] = {refspec.data()};
  git_strarray specs{refspecs, 1};
  if (int fetched = Git().git_remote_fetch(remote.get(), &specs, &options, "backout fetch");
      fetched != 0) {
    TransferFailure failure = DescribeTransferFailure(fetched, state, "read");
    return core::MakeError(failure.code, "cannot fetch branch {} from {}: {}", settings_->branch,
                           display, failure.message);
  }

  // The advertised heads are the remote's truth; a tracking ref may outlive a deleted branch.
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if (Git().git_remote_ls(&heads, &count, remote.get()) != 0) {
    return core::MakeError(core::ErrorCode::kUnavailable, "cannot list the branches of {}: {}",
                           display, LastError());
  }
  std::string wanted = fmt::format("refs/heads/{}", settings_->branch);
  for (size_t i = 0; i < count; ++i) {
    if (wanted == heads[i]->name) return ToHex(heads[i]->oid);
  }
  return core::MakeError(core::ErrorCode::kNotFound,
                         "branch {} not found in {}; check the provider's branch",
                         settings_->branch, display);
}

core::Result<CommitInfo> GitRepository::ReadCommit(std::string_view id) const {
  auto commit = LookupCommit(repository_, id);
  if (!commit) return std::unexpected(commit.error());
  return Describe(commit->get());
}

bool GitRepository::HasCommit(std::string_view id) const {
  return LookupCommit(repository_, id).has_value();
}

bool GitRepository::IsInHistory(std::string_view ancestor, std::string_view descendant) const {
  auto ancestor_oid = ParseOid(ancestor);
  auto descendant_oid = ParseOid(descendant);
  if (!ancestor_oid || !descendant_oid) return false;
  if (Git().git_oid_equal(&*ancestor_oid, &*descendant_oid) != 0) return true;
  return Git().git_graph_descendant_of(repository_, &*descendant_oid, &*ancestor_oid) == 1;
}

core::Result<std::optional<std::string>> GitRepository::ReadFile(std::string_view commit,
                                                                 std::string_view path) const {
  auto found = LookupCommit(repository_, commit);
  if (!found) return std::unexpected(found.error());
  auto tree = CommitTree(found->get());
  if (!tree) return std::unexpected(tree.error());
  std::optional<git_oid> blob = BlobAt(tree->get(), path);
  if (!blob) return std::optional<std::string>();
  auto text = BlobText(repository_, *blob);
  if (!text) return std::unexpected(text.error());
  return std::optional<std::string>(std::move(*text));
}

core::Result<void> GitRepository::WalkPathChanges(
    std::string_view head, std::string_view path, const VersionReader& reader, size_t max_commits,
    const std::function<bool(const PathChange&)>& visit) const {
  auto head_oid = ParseOid(head);
  if (!head_oid) return std::unexpected(head_oid.error());
  git_revwalk* raw_walk = nullptr;
  if (Git().git_revwalk_new(&raw_walk, repository_) != 0) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot walk history: {}", LastError());
  }
  Revwalk walk(raw_walk);
  Git().git_revwalk_simplify_first_parent(walk.get());
  if (Git().git_revwalk_push(walk.get(), &*head_oid) != 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "cannot walk history from {}: {}", head,
                           LastError());
  }

  auto version_of = [&](const std::optional<git_oid>& blob) -> std::optional<std::string> {
    if (!blob) return std::nullopt;
    auto text = BlobText(repository_, *blob);
    if (!text) return std::nullopt;
    auto version = reader.Read(*text);
    if (!version) return std::nullopt;
    return *version;
  };

  git_oid oid;
  size_t walked = 0;
  while (walked < max_commits && Git().git_revwalk_next(&oid, walk.get()) == 0) {
    ++walked;
    git_commit* raw_commit = nullptr;
    if (Git().git_commit_lookup(&raw_commit, repository_, &oid) != 0) {
      return core::MakeError(core::ErrorCode::kCorruption, "cannot read commit {}: {}", ToHex(oid),
                             LastError());
    }
    Commit commit(raw_commit);
    auto tree = CommitTree(commit.get());
    if (!tree) return std::unexpected(tree.error());
    std::optional<git_oid> after = BlobAt(tree->get(), path);

    std::optional<git_oid> before;
    if (Git().git_commit_parentcount(commit.get()) > 0) {
      git_commit* raw_parent = nullptr;
      if (Git().git_commit_parent(&raw_parent, commit.get(), 0) != 0) {
        return core::MakeError(core::ErrorCode::kCorruption,
                               "cannot read the parent of commit {}: {}", ToHex(oid), LastError());
      }
      Commit parent(raw_parent);
      auto parent_tree = CommitTree(parent.get());
      if (!parent_tree) return std::unexpected(parent_tree.error());
      before = BlobAt(parent_tree->get(), path);
    }

    bool same = before.has_value() == after.has_value() &&
                (!before || Git().git_oid_equal(&*before, &*after) != 0);
    if (same) continue;

    PathChange change;
    change.commit = Describe(commit.get());
    change.version_before = version_of(before);
    change.version_after = version_of(after);
    if (!visit(change)) break;
  }
  return {};
}

core::Result<std::optional<CommitInfo>> GitRepository::FindCommitContaining(
    std::string_view head, std::string_view stop_at, std::string_view text,
    size_t max_commits) const {
  auto head_oid = ParseOid(head);
  if (!head_oid) return std::unexpected(head_oid.error());
  git_revwalk* raw_walk = nullptr;
  if (Git().git_revwalk_new(&raw_walk, repository_) != 0) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot walk history: {}", LastError());
  }
  Revwalk walk(raw_walk);
  Git().git_revwalk_simplify_first_parent(walk.get());
  if (Git().git_revwalk_push(walk.get(), &*head_oid) != 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "cannot walk history from {}: {}", head,
                           LastError());
  }

  git_oid oid;
  size_t walked = 0;
  while (walked < max_commits && Git().git_revwalk_next(&oid, walk.get()) == 0) {
    ++walked;
    if (!stop_at.empty() && ToHex(oid) == stop_at) break;
    git_commit* raw_commit = nullptr;
    if (Git().git_commit_lookup(&raw_commit, repository_, &oid) != 0) continue;
    Commit commit(raw_commit);
    const char* message = Git().git_commit_message(commit.get());
    if (message != nullptr && std::string_view(message).find(text) != std::string_view::npos) {
      return std::optional<CommitInfo>(Describe(commit.get()));
    }
  }
  return std::optional<CommitInfo>();
}

core::Result<RevertTree> GitRepository::BuildRevert(std::string_view base,
                                                    const std::vector<std::string>& commits,
                                                    const std::vector<FileUpdate>& updates) const {
  auto base_commit = LookupCommit(repository_, base);
  if (!base_commit) return std::unexpected(base_commit.error());
  auto base_tree = CommitTree(base_commit->get());
  if (!base_tree) return std::unexpected(base_tree.error());

  // Step 1: each revert is a three-way merge of the commit's parent into ours, with the commit
  // itself as the common ancestor.
  RevertTree result;
  git_tree* ours = nullptr;
  Git().git_tree_dup(&ours, base_tree->get());
  Tree our_tree(ours);
  for (const std::string& id : commits) {
    auto commit = LookupCommit(repository_, id);
    if (!commit) return std::unexpected(commit.error());
    if (Git().git_commit_parentcount(commit->get()) == 0) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "commit {} has no parent, so it cannot be reverted", id);
    }
    git_commit* raw_parent = nullptr;
    if (Git().git_commit_parent(&raw_parent, commit->get(), 0) != 0) {
      return core::MakeError(core::ErrorCode::kCorruption, "cannot read the parent of {}: {}", id,
                             LastError());
    }
    Commit parent(raw_parent);
    auto commit_tree = CommitTree(commit->get());
    if (!commit_tree) return std::unexpected(commit_tree.error());
    auto parent_tree = CommitTree(parent.get());
    if (!parent_tree) return std::unexpected(parent_tree.error());

    git_merge_options options = GIT_MERGE_OPTIONS_INIT;
    git_index* raw_index = nullptr;
    if (Git().git_merge_trees(&raw_index, repository_, commit_tree->get(), our_tree.get(),
                              parent_tree->get(), &options) != 0) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot compute the revert of {}: {}", id,
                             LastError());
    }
    Index index(raw_index);
    if (Git().git_index_has_conflicts(index.get())) {
      git_index_conflict_iterator* raw_iterator = nullptr;
      Git().git_index_conflict_iterator_new(&raw_iterator, index.get());
      ConflictIterator iterator(raw_iterator);
      const git_index_entry* ancestor = nullptr;
      const git_index_entry* our = nullptr;
      const git_index_entry* their = nullptr;
      std::set<std::string> paths;
      while (Git().git_index_conflict_next(&ancestor, &our, &their, iterator.get()) == 0) {
        if (our != nullptr) {
          paths.insert(our->path);
        } else if (their != nullptr) {
          paths.insert(their->path);
        } else if (ancestor != nullptr) {
          paths.insert(ancestor->path);
        }
      }
      result.conflicts.assign(paths.begin(), paths.end());
      return result;
    }

    git_oid tree_oid;
    if (Git().git_index_write_tree_to(&tree_oid, index.get(), repository_) != 0) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot write the revert of {}: {}", id,
                             LastError());
    }
    git_tree* next = nullptr;
    if (Git().git_tree_lookup(&next, repository_, &tree_oid) != 0) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot read the revert of {}: {}", id,
                             LastError());
    }
    our_tree.reset(next);
  }

  // Step 2: the file updates, as new blobs over the reverted tree.
  if (!updates.empty()) {
    std::vector<git_tree_update> changes;
    std::vector<git_oid> blobs(updates.size());
    for (size_t i = 0; i < updates.size(); ++i) {
      const FileUpdate& update = updates[i];
      if (Git().git_blob_create_from_buffer(&blobs[i], repository_, update.contents.data(),
                                            update.contents.size()) != 0) {
        return core::MakeError(core::ErrorCode::kInternal, "cannot write {}: {}", update.path,
                               LastError());
      }
      git_filemode_t mode = GIT_FILEMODE_BLOB;
      git_tree_entry* entry = nullptr;
      if (Git().git_tree_entry_bypath(&entry, our_tree.get(), update.path.c_str()) == 0) {
        mode = Git().git_tree_entry_filemode(entry);
        Git().git_tree_entry_free(entry);
      }
      changes.push_back(
          git_tree_update{GIT_TREE_UPDATE_UPSERT, blobs[i], mode, update.path.c_str()});
    }
    git_oid updated;
    if (Git().git_tree_create_updated(&updated, repository_, our_tree.get(), changes.size(),
                                      changes.data()) != 0) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot write the updated tree: {}",
                             LastError());
    }
    git_tree* next = nullptr;
    Git().git_tree_lookup(&next, repository_, &updated);
    our_tree.reset(next);
  }
  result.tree_id = ToHex(*Git().git_tree_id(our_tree.get()));

  // Step 3: the files that differ from the base, for the plan.
  git_diff* raw_diff = nullptr;
  if (Git().git_diff_tree_to_tree(&raw_diff, repository_, base_tree->get(), our_tree.get(),
                                  nullptr) != 0) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot compare the revert with {}: {}",
                           base, LastError());
  }
  Diff diff(raw_diff);
  std::set<std::string> changed;
  for (size_t i = 0; i < Git().git_diff_num_deltas(diff.get()); ++i) {
    const git_diff_delta* delta = Git().git_diff_get_delta(diff.get(), i);
    changed.insert(delta->new_file.path != nullptr ? delta->new_file.path : delta->old_file.path);
  }
  result.changed_files.assign(changed.begin(), changed.end());
  return result;
}

core::Result<std::optional<std::string>> GitRepository::ReadTreeFile(std::string_view tree_id,
                                                                     std::string_view path) const {
  git_oid oid;
  if (Git().git_oid_fromstrn(&oid, tree_id.data(), tree_id.size()) != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "'{}' is not a tree id", tree_id);
  }
  git_tree* raw_tree = nullptr;
  if (Git().git_tree_lookup(&raw_tree, repository_, &oid) != 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "tree {} not found: {}", tree_id,
                           LastError());
  }
  Tree tree(raw_tree);
  std::optional<git_oid> blob = BlobAt(tree.get(), path);
  if (!blob) return std::optional<std::string>();
  auto text = BlobText(repository_, *blob);
  if (!text) return std::unexpected(text.error());
  return std::optional<std::string>(std::move(*text));
}

core::Result<std::string> GitRepository::CreateCommit(std::string_view tree_id,
                                                      std::string_view parent,
                                                      const std::string& message,
                                                      core::Time time) const {
  git_oid tree_oid;
  if (Git().git_oid_fromstrn(&tree_oid, tree_id.data(), tree_id.size()) != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "'{}' is not a tree id", tree_id);
  }
  git_tree* raw_tree = nullptr;
  if (Git().git_tree_lookup(&raw_tree, repository_, &tree_oid) != 0) {
    return core::MakeError(core::ErrorCode::kNotFound, "tree {} not found: {}", tree_id,
                           LastError());
  }
  Tree tree(raw_tree);
  auto parent_commit = LookupCommit(repository_, parent);
  if (!parent_commit) return std::unexpected(parent_commit.error());

  git_signature* raw_signature = nullptr;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
  if (Git().git_signature_new(&raw_signature, settings_->author_name.c_str(),
                              settings_->author_email.c_str(), seconds, 0) != 0) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid commit identity {} <{}>: {}; fix author_name or author_email",
                           settings_->author_name, settings_->author_email, LastError());
  }
  Signature signature(raw_signature);

  const git_commit* parents[] = {parent_commit->get()};
  git_oid commit_oid;
  if (Git().git_commit_create(&commit_oid, repository_, nullptr, signature.get(), signature.get(),
                              nullptr, message.c_str(), tree.get(), 1, parents) != 0) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot write the revert commit: {}",
                           LastError());
  }
  return ToHex(commit_oid);
}

core::Result<PushResult> GitRepository::Push(std::string_view commit, std::string_view key) {
  const std::string display = DisplayUrl(settings_->repository);
  auto oid = ParseOid(commit);
  if (!oid) return std::unexpected(oid.error());

  // libgit2 pushes references, so the commit gets one of its own for the push.
  std::string local_ref = fmt::format("refs/backout/{}", SafeRefName(key));
  git_reference* raw_reference = nullptr;
  if (Git().git_reference_create(&raw_reference, repository_, local_ref.c_str(), &*oid, /*force=*/1,
                                 "backout revert") != 0) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot create reference {}: {}", local_ref,
                           LastError());
  }
  Reference reference(raw_reference);

  git_remote* raw_remote = nullptr;
  if (Git().git_remote_lookup(&raw_remote, repository_, kRemoteName) != 0) {
    return core::MakeError(core::ErrorCode::kCorruption, "remote origin missing in {}: {}",
                           settings_->work_dir, LastError());
  }
  Remote remote(raw_remote);

  CallbackState state;
  state.settings = settings_;
  git_push_options options = GIT_PUSH_OPTIONS_INIT;
  options.callbacks.credentials = AcquireCredential;
  options.callbacks.certificate_check = CheckCertificate;
  options.callbacks.push_update_reference = [](const char*, const char* status, void* data) -> int {
    if (status != nullptr) static_cast<CallbackState*>(data)->rejection = status;
    return 0;
  };
  options.callbacks.payload = &state;

  // No leading '+': the remote must fast-forward, so a push never overwrites someone's commit.
  std::string refspec = fmt::format("{}:refs/heads/{}", local_ref, settings_->branch);
  char* refspecs[] = {refspec.data()};
  git_strarray specs{refspecs, 1};
  int pushed = Git().git_remote_push(remote.get(), &specs, &options);
  if (pushed == GIT_ENONFASTFORWARD) {
    return PushResult{PushStatus::kRejected, LastError()};
  }
  if (pushed != 0) {
    TransferFailure failure = DescribeTransferFailure(pushed, state, "push to");
    return core::MakeError(failure.code, "cannot push to {}: {}", display, failure.message);
  }
  if (!state.rejection.empty()) return PushResult{PushStatus::kRejected, state.rejection};
  return PushResult{PushStatus::kPushed, ""};
}

}  // namespace backout::providers::git
