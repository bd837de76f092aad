// Helper of check_torchscript.py: trains a small trainer_core a few steps,
// saves it to DIR, and writes DIR/probe_inputs.bin and DIR/probe_outputs.bin
// (float32, row-major) with trainer_core::predict's answer, for Python to
// compare against torch.jit.load(DIR/model.pt) and DIR/model_state.pt.
//   export_model DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "actors/trainer/trainer_core.hpp"
#include "trainer_test_data.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: export_model DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  auto settings = melissa::testing::small_settings(5, 120);
  settings.model.activation = "silu";
  melissa::trainer_core trainer(settings);
  for (std::uint32_t k = 0; k < 4; ++k) {
    auto batch = melissa::testing::make_batch(8, 5, 120, k, 20.0, 4.0);
    trainer.step(&batch);
  }
  trainer.save(dir);
  auto probe = melissa::testing::make_batch(7, 5, 120, 99, 20.0, 4.0);
  auto predicted = trainer.predict(probe.inputs);
  auto write = [&](const std::string& name, const std::vector<float>& values) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(float)));
  };
  write("probe_inputs.bin", probe.inputs);
  write("probe_outputs.bin", predicted);
  std::printf("mean %.9g std %.9g\n", trainer.output_mean(), trainer.output_std());
  return 0;
}
