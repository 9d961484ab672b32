#include "formats/atomic-file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "formats/error.h"

namespace xent {
namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void write_file_atomic(const std::string& path,
                       const std::function<void(const std::function<void(const void*, size_t)>&)>& fill) {
  // A name of its own per writer: two processes (or threads) saving the same path each
  // write a whole file, and the last rename wins, instead of interleaving in one .tmp.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create '" + tmp + "': " + errno_text());
  try {
    fill([&](const void* data, size_t n) {
      const char* p = static_cast<const char*>(data);
      while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
          if (errno == EINTR) continue;
          throw Error("cannot write '" + tmp + "': " + errno_text());
        }
        p += w;
        n -= static_cast<size_t>(w);
      }
    });
    // The rename must not become visible before the data is on disk, or a crash could
    // leave a complete-looking name over a half-written file.
    if (::fsync(fd) != 0) throw Error("cannot fsync '" + tmp + "': " + errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const std::string err = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot close '" + tmp + "': " + err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + err);
  }
  // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL);
  // the file is complete either way, so only real I/O errors are reported.
  const std::string dir = dir_of(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL && err != EROFS)
      throw Error("cannot fsync directory '" + dir + "' after writing '" + path + "': " + std::strerror(err));
  }
}

}  // namespace xent
