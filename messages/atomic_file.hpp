// One way to publish a file so that a reader sees either the previous content
// or the whole new one, never a truncated or empty file, even after a crash or
// a full disk. Plain C++ (POSIX), no CAF.
#pragma once

#include <string>
#include <sys/types.h>

namespace melissa {

// Writes `content` to a temporary file in the same directory as `path`
// (created with `mode`, made exact by fchmod whatever the umask), fsyncs it,
// renames it to `path`, then fsyncs the directory. Every step is checked: on
// failure the temporary file is removed, `path` keeps its previous content,
// and a std::system_error is thrown whose what() names the path and the
// system error (e.g. "cannot write /out/.summary.json.tmp.123: No space left
// on device").
void write_file_atomically(const std::string& path, const std::string& content,
                           mode_t mode = 0644);

}  // namespace melissa
