#include "security/study_credentials.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace melissa::security {
namespace {

namespace fs = std::filesystem;

std::runtime_error openssl_error(const std::string& what) {
  char buf[256] = "unknown error";
  if (const auto code = ERR_get_error()) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return std::runtime_error("cannot create the study's credentials: " + what + ": " + buf);
}

std::runtime_error system_error(const std::string& what, const fs::path& path) {
  return std::runtime_error(what + " " + path.string() + ": " + std::strerror(errno));
}

struct file_closer {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Opens `path` for writing with mode 0600 whatever the umask; an existing file
// (an earlier run's) is replaced, never reused with its old mode.
std::unique_ptr<FILE, file_closer> create_private(const fs::path& path) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw system_error("cannot create", path);
  if (::fchmod(fd, 0600) != 0) {
    const auto err = system_error("cannot chmod", path);
    ::close(fd);
    throw err;
  }
  FILE* f = ::fdopen(fd, "w");
  if (!f) {
    const auto err = system_error("cannot open", path);
    ::close(fd);
    throw err;
  }
  return std::unique_ptr<FILE, file_closer>(f);
}

void close_checked(std::unique_ptr<FILE, file_closer> f, const fs::path& path) {
  FILE* raw = f.release();
  if (std::fflush(raw) != 0 || ::fsync(::fileno(raw)) != 0) {
    const auto err = system_error("cannot write", path);
    std::fclose(raw);
    throw err;
  }
  if (std::fclose(raw) != 0) throw system_error("cannot write", path);
}

void require_private(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw system_error("the study's credentials are missing:", path);
  if ((st.st_mode & 077) != 0)
    throw std::runtime_error("the study's credentials " + path.string() +
                             " are readable by other users (mode " +
                             std::to_string(st.st_mode & 0777) + "); refusing to use them");
}

}  // namespace

fs::path credentials_dir(const fs::path& output_dir) { return output_dir / ".melissa"; }

credentials create_study_credentials(const fs::path& output_dir) {
  const auto dir = credentials_dir(output_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0) throw system_error("cannot chmod", dir);

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) throw openssl_error("key generation");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!cert) throw openssl_error("certificate");
  // A random serial: two runs of one study never present the same certificate.
  const auto serial_hex = random_hex(16);
  BIGNUM* serial_bn = nullptr;
  if (!BN_hex2bn(&serial_bn, serial_hex.c_str())) throw openssl_error("serial");
  BN_to_ASN1_INTEGER(serial_bn, X509_get_serialNumber(cert.get()));
  BN_free(serial_bn);
  X509_set_version(cert.get(), 2);  // v3: extensions below
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);          // clock skew between nodes
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3650L * 86400);  // studies run for weeks
  X509_set_pubkey(cert.get(), key.get());
  auto* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("melissa study"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  // It signs itself, so it must be a CA for OpenSSL to trust it as one.
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                                  std::pair{NID_key_usage, "critical,keyCertSign,digitalSignature"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw openssl_error("certificate extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) throw openssl_error("signature");

  credentials out{dir / "study.crt", dir / "study.key"};
  {
    auto f = create_private(out.key);
    if (!PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
      throw openssl_error("writing " + out.key.string());
    close_checked(std::move(f), out.key);
  }
  {
    auto f = create_private(out.certificate);
    if (!PEM_write_X509(f.get(), cert.get()))
      throw openssl_error("writing " + out.certificate.string());
    close_checked(std::move(f), out.certificate);
  }
  return out;
}

credentials find_study_credentials(const fs::path& output_dir) {
  const auto dir = credentials_dir(output_dir);
  credentials out{dir / "study.crt", dir / "study.key"};
  require_private(out.key);
  require_private(out.certificate);
  if (::access(out.key.c_str(), R_OK) != 0) throw system_error("cannot read", out.key);
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    const auto n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("cannot read random bytes: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char b : raw) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

bool secrets_equal(std::string_view expected, std::string_view given) {
  if (expected.empty()) return false;
  unsigned char diff = expected.size() == given.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

}  // namespace melissa::security
