// Writes a known series with metrics_writer under <dir>/metrics/, for
// test_tfevents.py to read with its own decoder.
#include <cstdio>

#include "actors/metrics/metrics_writer.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  melissa::metrics_writer w(argv[1], {"loss/train", "loss/validation", "samples_per_second"});
  for (int i = 0; i < 5; ++i) {
    const double step = 100.0 * i;
    if (i % 2 == 0)
      w.record(100 * i, 1700000000.0 + i, {{"loss/train", 1.0 / (i + 1)}, {"samples_per_second", 250.0 + step}});
    else
      w.record(100 * i, 1700000000.0 + i, {{"loss/train", 1.0 / (i + 1)}, {"loss/validation", 2.0 / (i + 1)}});
  }
  return 0;
}
