#include "actors/checkpoint_keeper/rank_parts.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "actors/checkpoint_keeper/buffer_file.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"

namespace melissa::checkpoint {
namespace fs = std::filesystem;

checkpoint_part text_part(std::string path, std::string text) {
  return [path = std::move(path), text = std::move(text)](staging& s) {
    file_writer out(s.prepare(path));
    out.write(text.data(), text.size());
    s.add(path, out.close());
  };
}

std::vector<checkpoint_part> rank_parts(rank_snapshot snapshot) {
  const std::string prefix = "rank-" + std::to_string(snapshot.rank) + "/";
  std::vector<checkpoint_part> parts;
  if (!snapshot.trainer.empty())
    parts.push_back([prefix, trainer = snapshot.trainer](staging& s) {
      // Raw arrays through the hashing writer (no second read for the
      // checksum), then their index.
      const std::string data = prefix + "trainer/" + trainer_snapshot::data_file;
      file_writer out(s.prepare(data));
      trainer.write_arrays([&](const void* bytes, std::size_t n) { out.write(bytes, n); });
      s.add(data, out.close());
      text_part(prefix + "trainer/" + trainer_snapshot::index_file, trainer.index_json())(s);
    });
  if (snapshot.buffer)
    parts.push_back([prefix, buffer = std::make_shared<const buffer_snapshot>(std::move(*snapshot.buffer))](
                        staging& s) {
      s.add(prefix + "buffer.bin", write_buffer_file(*buffer, s.prepare(prefix + "buffer.bin")));
    });
  if (snapshot.with_received)
    parts.push_back([prefix, text = step_log_to_json(snapshot.received)](staging& s) {
      file_writer out(s.prepare(prefix + "received_steps.json"));
      out.write(text.data(), text.size());
      s.add(prefix + "received_steps.json", out.close());
    });
  if (snapshot.table) {
    auto table = std::move(*snapshot.table);
    const auto& sims = snapshot.received.simulations();
    for (std::size_t sim = 0; sim < table.states.size(); ++sim) {
      if (table.states[sim] != sim_state::complete) continue;
      const auto it = sims.find(static_cast<std::uint32_t>(sim));
      if (it == sims.end() || !it->second.done) table.states[sim] = sim_state::submitted;
    }
    parts.push_back([text = simulation_table_to_json(table)](staging& s) {
      file_writer out(s.prepare("study/simulation_table.json"));
      out.write(text.data(), text.size());
      s.add("study/simulation_table.json", out.close());
    });
  }
  return parts;
}

restored_rank read_rank_part(const std::string& dir, std::uint32_t rank) {
  const std::string base = dir + "/rank-" + std::to_string(rank);
  restored_rank out;
  // tensors.json: the checkpoint format; trainer_state.pt: older checkpoints
  // (trainer_core::load reads both).
  if (fs::exists(base + "/trainer/" + trainer_snapshot::index_file) ||
      fs::exists(base + "/trainer/trainer_state.pt"))
    out.trainer_dir = base + "/trainer";
  if (fs::exists(base + "/buffer.bin")) {
    auto snapshot = read_buffer_file(base + "/buffer.bin");
    out.pending = std::move(snapshot.pending);
    out.buffer = restore_training_buffer(snapshot);
  }
  const std::string steps = base + "/received_steps.json";
  std::ifstream in(steps, std::ios::binary);
  if (!in) throw std::runtime_error(steps + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  try {
    out.received = step_log_from_json(text.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(steps + ": " + e.what());
  }
  return out;
}

}  // namespace melissa::checkpoint
