// checkpoint-verify DIR...: runs verify_checkpoint on each checkpoint
// directory and prints "DIR ok batch=B reason=R files=N" or "DIR invalid:
// why"; exit 1 if any is invalid. The integration tests use it to check
// the checkpoints a running study wrote (Python has no XXH3 here).
#include <iostream>

#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"

int main(int argc, char** argv) {
  int rc = 0;
  for (int i = 1; i < argc; ++i) {
    const auto v = melissa::checkpoint::verify_checkpoint(argv[i]);
    if (v.valid)
      std::cout << argv[i] << " ok batch=" << v.contents.batch << " reason=" << v.contents.reason
                << " files=" << v.contents.files.size() << "\n";
    else {
      std::cout << argv[i] << " invalid: " << v.why << "\n";
      rc = 1;
    }
  }
  return rc;
}
