#include "tls.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace backout::emulators::kubernetes {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256")); }

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  if (extension == nullptr) return false;
  bool added = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added;
}

// Issues a certificate for `key`; a null issuer makes it self-signed.
CertPtr Issue(const char* common_name, long serial, EVP_PKEY* key, X509* issuer,
              EVP_PKEY* issuer_key, bool is_ca, const char* extended_usage, const char* alt_names) {
  CertPtr cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));

  bool ok = AddExtension(cert.get(), signer, NID_basic_constraints,
                         is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
            AddExtension(cert.get(), signer, NID_key_usage,
                         is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
            AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ok && issuer != nullptr) {
    ok = AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  if (ok && extended_usage != nullptr) {
    ok = AddExtension(cert.get(), signer, NID_ext_key_usage, extended_usage);
  }
  if (ok && alt_names != nullptr) {
    ok = AddExtension(cert.get(), signer, NID_subject_alt_name, alt_names);
  }
  if (!ok) return nullptr;
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return nullptr;
  }
  return cert;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

}  // namespace

TlsMaterial MakeTlsMaterial(const std::string& client_common_name) {
  KeyPtr ca_key = NewKey();
  KeyPtr server_key = NewKey();
  KeyPtr client_key = NewKey();
  if (!ca_key || !server_key || !client_key) return {};

  CertPtr ca = Issue("kube-emulator-ca", 1, ca_key.get(), nullptr, nullptr, true, nullptr, nullptr);
  if (!ca) return {};
  CertPtr server = Issue("kube-emulator", 2, server_key.get(), ca.get(), ca_key.get(), false,
                         "serverAuth", "IP:127.0.0.1,DNS:localhost");
  CertPtr client = Issue(client_common_name.c_str(), 3, client_key.get(), ca.get(), ca_key.get(),
                         false, "clientAuth", nullptr);
  if (!server || !client) return {};

  return TlsMaterial{CertPem(ca.get()), CertPem(server.get()), KeyPem(server_key.get()),
                     CertPem(client.get()), KeyPem(client_key.get())};
}

}  // namespace backout::emulators::kubernetes
