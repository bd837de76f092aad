#include "security/tls.hpp"

#include <dlfcn.h>

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

// CAF 0.17's OpenSSL sessions all run on the middleman's one I/O thread and
// never clear OpenSSL's per-thread error queue before an I/O call, as OpenSSL
// requires. One failed handshake (a port scan, a peer without the key, a
// connect and close) leaves an error there, and the next SSL_read of a healthy
// session that would only have to wait for more bytes reads as an error: CAF
// drops that connection (seen here: the launcher lost its server). These
// definitions take precedence over libssl's for the whole process (the
// executable's symbols come first in the dynamic linker's lookup) and call
// the real function with an empty queue.
namespace {

template <class Fn>
Fn real_ssl(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = real_ssl<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = real_ssl<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = real_ssl<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = real_ssl<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"

namespace melissa::security {

void use_study_tls(caf::actor_system_config& cfg, const credentials& creds) {
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = creds.certificate.string();
  cfg.openssl_key = creds.key.string();
  // The study's certificate is its own authority: only peers presenting it pass.
  cfg.openssl_cafile = creds.certificate.string();
}

}  // namespace melissa::security
