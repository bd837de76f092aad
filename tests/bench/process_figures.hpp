// What a benchmark reads of its own process: CPU time and resident memory.
#pragma once

#include <ctime>
#include <fstream>

#include <unistd.h>

namespace melissa::bench {

// CPU seconds this process has used (every thread).
inline double cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + t.tv_nsec * 1e-9;
}

// Resident memory now, in bytes (/proc/self/statm counts pages).
inline double rss_bytes() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace melissa::bench
