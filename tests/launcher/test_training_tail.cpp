// The training tail (actors/launcher/training_tail.hpp): when a study is in
// it, rank 0's figures read from its `train` answer, the progress line.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "actors/launcher/training_tail.hpp"

TEST_CASE("the training tail: when, and its progress line") {
  using namespace melissa::launcher_detail;
  melissa::launcher_core::counts c;
  c.requested = 4;
  c.completed = 3;
  c.failed = 1;
  CHECK(in_training_tail(true, true, c, 4));
  CHECK(!in_training_tail(false, true, c, 4));  // does not train
  CHECK(!in_training_tail(true, false, c, 4));  // stopping or finishing
  CHECK(!in_training_tail(true, true, c, 5));   // a simulation not yet asked for
  c.running = 1;
  CHECK(!in_training_tail(true, true, c, 4));
  c.running = 0;
  tail_figures fig;
  CHECK(tail_progress_line(61.0, c, fig) ==
        "[   61.0 s] training tail: 3/4 completed, 1 failed | waiting for rank 0's figures");
  CHECK(!read_tail_figures(R"({"error":"no"})", fig));
  CHECK(!fig.known);
  CHECK(read_tail_figures(R"({"rank":0,"state":"training","batches":1234,"train_loss":0.0123,"samples_per_s":565.3})", fig));
  CHECK(tail_progress_line(61.0, c, fig) ==
        "[   61.0 s] training tail: 3/4 completed, 1 failed | 1234 batches, loss 0.0123, 565 samples/s");
}
