// A server built without LibTorch: every sink but "train" works.
#include <stdexcept>

#include "apps/melissa-server/training.hpp"

namespace melissa {

bool training_available() { return false; }

void add_training_children(std::vector<child_spec>&, const config::study_config&,
                           const config::design_matrix&, const training_rank&) {
  throw std::runtime_error(
      "server.sink = \"train\" needs a server built with LibTorch (install libtorch-dev and "
      "rebuild, or pass -Dtorch_prefix=DIR to meson)");
}

}  // namespace melissa
