// The study's secret: a private key and a self-signed certificate made by
// melissa-run for one study, with which every CAF port of the study (the
// launcher, the shell endpoint) runs mutual TLS. Plain C++ and OpenSSL, no CAF.
//
// Why mutual TLS through CAF's OpenSSL module rather than a token check in
// each actor: the TLS handshake happens before CAF reads a single byte of its
// own protocol, so a peer without the key cannot make the process parse (or
// allocate for) a CAF header, cannot send any actor a message, and cannot
// learn the published actors. The certificate is its own certificate
// authority: a peer is trusted exactly when it presents this certificate and
// proves it holds the key, whichever side of the connection it is on (the
// server proves itself to the launcher the same way the launcher does to it).
//
// Files, in <output_dir>/.melissa/ (mode 0700): study.key and study.crt, both
// 0600, created by the owner of the study. Only paths travel on command lines.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace melissa::security {

struct credentials {
  std::filesystem::path certificate;  // PEM, self-signed, also the trusted CA
  std::filesystem::path key;          // PEM private key (P-256)
};

// The folder that holds a study's credentials.
std::filesystem::path credentials_dir(const std::filesystem::path& output_dir);

// Makes a fresh key and certificate for one run of a study, replacing those of
// an earlier run. Throws std::runtime_error naming the path and the reason.
credentials create_study_credentials(const std::filesystem::path& output_dir);

// The credentials of a running study (server ranks, melissa-shell). Throws
// std::runtime_error when they are missing or readable by other users.
credentials find_study_credentials(const std::filesystem::path& output_dir);

// `bytes` random bytes from the kernel, as 2 * bytes hex characters.
std::string random_hex(std::size_t bytes = 16);

// Compares a given secret with the expected one in time independent of where
// they differ. An empty expected secret matches nothing.
bool secrets_equal(std::string_view expected, std::string_view given);

}  // namespace melissa::security
