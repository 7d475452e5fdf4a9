#include "http/tls_material.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

namespace backout::http::internal {

namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;

std::unexpected<Error> InvalidOption(std::string message) {
  return std::unexpected(Error{ErrorKind::kInvalidArgument, std::move(message)});
}

// The last OpenSSL error as text, clearing the queue so it cannot leak into a later message.
std::string TakeOpenSslError() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) {
    return "no details from OpenSSL";
  }
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

Result<std::string> ReadFile(const std::string& option, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return InvalidOption(fmt::format("cannot read {} {}: {}; check the path and its permissions",
                                     option, path, std::strerror(errno)));
  }
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Counts the certificates in PEM text; stops at the first block that is not a certificate.
int CountCertificates(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  int count = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    ++count;
  }
  ERR_clear_error();
  return count;
}

X509Ptr ReadCertificate(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

KeyPtr ReadKey(const std::string& pem, const std::string& password) {
  BioPtr bio = MemoryBio(pem);
  // With no callback, OpenSSL takes the last argument as the passphrase.
  void* passphrase = const_cast<char*>(password.c_str());
  return KeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, passphrase));
}

// Returns the PEM text of an option given as a file or inline, or "" when neither is set.
Result<std::string> PemOf(const std::string& file_option, const std::string& file,
                          const std::string& pem_option, const std::string& pem) {
  if (!file.empty() && !pem.empty()) {
    return InvalidOption(
        fmt::format("both {} and {} are set; keep only one of them", file_option, pem_option));
  }
  if (!file.empty()) {
    return ReadFile(file_option, file);
  }
  return pem;
}

Result<void> CheckCa(const ClientOptions& options) {
  auto pem = PemOf("ca_file", options.ca_file, "ca_pem", options.ca_pem);
  if (!pem) {
    return std::unexpected(pem.error());
  }
  if (pem->empty() && options.ca_file.empty()) {
    return {};
  }
  if (CountCertificates(*pem) == 0) {
    std::string source = options.ca_file.empty() ? "ca_pem" : "ca_file " + options.ca_file;
    return InvalidOption(fmt::format(
        "{} contains no PEM certificate; expected one or more '-----BEGIN CERTIFICATE-----' "
        "blocks",
        source));
  }
  return {};
}

Result<void> CheckClientCertificate(const ClientOptions& options, TlsMaterial& material) {
  auto cert_pem = PemOf("client_cert_file", options.client_cert_file, "client_cert_pem",
                        options.client_cert_pem);
  if (!cert_pem) {
    return std::unexpected(cert_pem.error());
  }
  auto key_pem =
      PemOf("client_key_file", options.client_key_file, "client_key_pem", options.client_key_pem);
  if (!key_pem) {
    return std::unexpected(key_pem.error());
  }
  bool has_cert = !options.client_cert_file.empty() || !options.client_cert_pem.empty();
  bool has_key = !options.client_key_file.empty() || !options.client_key_pem.empty();
  if (!has_cert && !has_key) {
    return {};
  }
  if (!has_cert) {
    return InvalidOption(
        "a client key is set without a client certificate; set client_cert_file or "
        "client_cert_pem too");
  }

  X509Ptr cert = ReadCertificate(*cert_pem);
  if (!cert) {
    return InvalidOption(
        fmt::format("the client certificate ({}) is not a PEM certificate: {}",
                    options.client_cert_file.empty() ? "client_cert_pem" : options.client_cert_file,
                    TakeOpenSslError()));
  }

  // Without a separate key, the certificate's PEM must contain it, and libcurl reads it from there.
  const std::string& key_source = has_key ? *key_pem : *cert_pem;
  KeyPtr key = ReadKey(key_source, options.client_key_password);
  if (!key) {
    if (!has_key) {
      ERR_clear_error();
      return InvalidOption(
          "the client certificate has no private key beside it; set client_key_file or "
          "client_key_pem");
    }
    return InvalidOption(
        fmt::format("the client key ({}) cannot be read: {}; check the PEM and client_key_password",
                    options.client_key_file.empty() ? "client_key_pem" : options.client_key_file,
                    TakeOpenSslError()));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidOption(
        "the client key does not match the client certificate; check that both come from the "
        "same certificate request");
  }

  if (!has_key) {
    material.key_file = options.client_cert_file;
    material.key_pem = options.client_cert_pem;
  }
  return {};
}

}  // namespace

Result<TlsMaterial> LoadTlsMaterial(const ClientOptions& options) {
  if (auto checked = CheckCa(options); !checked) {
    return std::unexpected(checked.error());
  }

  TlsMaterial material;
  material.ca_file = options.ca_file;
  material.ca_pem = options.ca_pem;
  material.cert_file = options.client_cert_file;
  material.cert_pem = options.client_cert_pem;
  material.key_file = options.client_key_file;
  material.key_pem = options.client_key_pem;
  material.key_password = options.client_key_password;
  material.insecure_skip_verify = options.insecure_skip_verify;
  if (auto checked = CheckClientCertificate(options, material); !checked) {
    return std::unexpected(checked.error());
  }
  return material;
}

}  // namespace backout::http::internal
