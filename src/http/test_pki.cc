#include "http/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace backout::http::testing {

namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

void Require(bool ok, const char* step) {
  if (!ok) {
    std::fprintf(stderr, "test PKI: %s failed\n", step);
    std::abort();
  }
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  Require(extension != nullptr, "X509V3_EXT_conf_nid");
  Require(X509_add_ext(cert, extension, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(extension);
}

struct CertificateSpec {
  const char* common_name;
  long serial;
  X509* issuer = nullptr;  // null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  const char* basic_constraints = "critical,CA:FALSE";
  const char* key_usage = "critical,digitalSignature";
  const char* extended_key_usage = nullptr;
  const char* subject_alt_name = nullptr;
};

X509Ptr MakeCertificate(EVP_PKEY* key, const CertificateSpec& spec) {
  X509Ptr cert(X509_new());
  Require(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), spec.serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Backout tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name), -1, -1, 0);
  X509* issuer = spec.issuer != nullptr ? spec.issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));

  AddExtension(cert.get(), issuer, NID_basic_constraints, spec.basic_constraints);
  AddExtension(cert.get(), issuer, NID_key_usage, spec.key_usage);
  AddExtension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (spec.issuer != nullptr) {
    AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  }
  if (spec.extended_key_usage != nullptr) {
    AddExtension(cert.get(), issuer, NID_ext_key_usage, spec.extended_key_usage);
  }
  if (spec.subject_alt_name != nullptr) {
    AddExtension(cert.get(), issuer, NID_subject_alt_name, spec.subject_alt_name);
  }

  EVP_PKEY* signing_key = spec.issuer_key != nullptr ? spec.issuer_key : key;
  Require(X509_sign(cert.get(), signing_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string CertificatePem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  Require(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, length);
  BIO_free(bio);
  return pem;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  Require(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, length);
  BIO_free(bio);
  return pem;
}

KeyPtr NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  Require(key != nullptr, "EVP_EC_gen");
  return key;
}

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary);
  file << content;
  Require(file.good(), "writing a PEM file");
}

}  // namespace

TestPki MakeTestPki() {
  KeyPtr ca_key = NewKey();
  X509Ptr ca = MakeCertificate(ca_key.get(), {.common_name = "Backout test CA",
                                              .serial = 1,
                                              .basic_constraints = "critical,CA:TRUE",
                                              .key_usage = "critical,keyCertSign,cRLSign"});

  KeyPtr server_key = NewKey();
  X509Ptr server =
      MakeCertificate(server_key.get(), {.common_name = "127.0.0.1",
                                         .serial = 2,
                                         .issuer = ca.get(),
                                         .issuer_key = ca_key.get(),
                                         .extended_key_usage = "serverAuth",
                                         .subject_alt_name = "IP:127.0.0.1,DNS:localhost"});

  KeyPtr client_key = NewKey();
  X509Ptr client = MakeCertificate(client_key.get(), {.common_name = "backout-test-client",
                                                      .serial = 3,
                                                      .issuer = ca.get(),
                                                      .issuer_key = ca_key.get(),
                                                      .extended_key_usage = "clientAuth"});

  TestPki pki;
  pki.ca_cert_pem = CertificatePem(ca.get());
  pki.server_cert_pem = CertificatePem(server.get());
  pki.server_key_pem = KeyPem(server_key.get());
  pki.client_cert_pem = CertificatePem(client.get());
  pki.client_key_pem = KeyPem(client_key.get());
  return pki;
}

void TestPki::WriteTo(const std::filesystem::path& folder) {
  ca_cert_file = folder / "ca.pem";
  server_cert_file = folder / "server.pem";
  server_key_file = folder / "server-key.pem";
  client_cert_file = folder / "client.pem";
  client_key_file = folder / "client-key.pem";
  WriteFile(ca_cert_file, ca_cert_pem);
  WriteFile(server_cert_file, server_cert_pem);
  WriteFile(server_key_file, server_key_pem);
  WriteFile(client_cert_file, client_cert_pem);
  WriteFile(client_key_file, client_key_pem);
}

}  // namespace backout::http::testing
