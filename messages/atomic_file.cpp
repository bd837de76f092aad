#include "messages/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace melissa {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::system_error(err, std::generic_category(), what + " " + path);
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The temporary file: hidden, in the target's directory (rename is atomic only
// within one file system), unique per process and call.
std::string temp_name(const std::string& path) {
  static unsigned counter = 0;
  const auto slash = path.rfind('/');
  const auto dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  const auto base = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + "." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++counter);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& content, mode_t mode) {
  const auto temp = temp_name(path);
  {
    fd_guard out;
    out.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out.fd < 0) fail("cannot create", temp, errno);
    // On any error below the temporary file goes; the target is untouched.
    const auto abandon = [&](const char* what) {
      const int err = errno;
      ::unlink(temp.c_str());
      fail(what, temp, err);
    };
    if (::fchmod(out.fd, mode) != 0) abandon("cannot chmod");
    std::size_t done = 0;
    while (done < content.size()) {
      const auto n = ::write(out.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) abandon("cannot write");
      if (n == 0) {
        errno = EIO;
        abandon("cannot write");
      }
      done += static_cast<std::size_t>(n);
    }
    // Delayed allocation: ENOSPC may only show here or at close.
    if (::fsync(out.fd) != 0) abandon("cannot sync");
    const int fd = out.fd;
    out.fd = -1;
    if (::close(fd) != 0) abandon("cannot close");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    fail("cannot rename " + temp + " to", path, err);
  }
  // The rename itself is durable only once the directory is synced.
  const auto dir = directory_of(path);
  fd_guard d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd < 0) fail("cannot open the directory", dir, errno);
  if (::fsync(d.fd) != 0) fail("cannot sync the directory", dir, errno);
}

}  // namespace melissa
