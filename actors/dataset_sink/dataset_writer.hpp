// Writes a study's data as it arrives: one folder per simulation holding one
// .npy file per field (float32, shape (time steps, field size), row t = step t)
// and parameters.npy (float64). Rows are written in place as steps arrive, in
// any order, into <field>.npy.part; when the simulation is finished the header
// gets its final shape, the file is synced and renamed to <field>.npy. So a
// file under its final name is always complete, and a finished simulation's
// files are never opened for writing again (a retried attempt that resends
// its steps changes nothing). Layout, as the heat solver's dataset mode and
// the offline trainer use it:
//   <dir>/sim_000012/temperature.npy   <dir>/sim_000012/parameters.npy
// A simulation that never finished (the study ended first) keeps its data in
// <field>.npy.part, with a valid header counting only the rows it holds.
// Plain C++, no CAF. I/O errors throw std::system_error naming the path.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace melissa {

class dataset_writer {
 public:
  // `parameters[sim]` are the parameters of simulation `sim` (may be empty).
  dataset_writer(std::string dir, std::vector<std::string> field_names,
                 std::vector<std::vector<double>> parameters);
  ~dataset_writer();
  dataset_writer(const dataset_writer&) = delete;
  dataset_writer& operator=(const dataset_writer&) = delete;

  // Returns false (and writes nothing) when `sim` is already finished.
  bool write_step(std::uint32_t sim, std::uint32_t field, std::uint32_t step, const float* values,
                  std::uint64_t count);
  // Fixes the headers, renames the files to their final names and writes
  // parameters.npy; the simulation's files are complete. A second call for
  // the same simulation does nothing.
  void finish(std::uint32_t sim);
  // Closes every simulation still open (the study ends) with valid headers,
  // leaving them under their .part names; returns their ids.
  std::vector<std::uint32_t> close_unfinished();

  // A restarted server (docs/checkpoints.md, "Dataset mode"): these
  // simulations' files are complete on disk; their steps, if sent again,
  // are dropped (write_step returns false) and finish() leaves them alone.
  void mark_finished(const std::vector<std::uint32_t>& sims);

  static std::string sim_dir_name(std::uint32_t sim);
  const std::string& dir() const { return dir_; }
  std::uint64_t finished() const { return finished_sims_.size(); }
  // Steps that arrived for a simulation already finished (dropped).
  std::uint64_t steps_after_finish() const { return steps_after_finish_; }

 private:
  struct open_file {
    int fd = -1;
    std::uint64_t count = 0;        // values per row
    std::vector<bool> have;         // have[t]: step t written
  };
  open_file& file_for(std::uint32_t sim, std::uint32_t field, std::uint64_t count);
  std::string path_of(std::uint32_t sim, std::uint32_t field) const;
  // Header counting the rows held from step 0 on; syncs and closes the file.
  void seal(std::uint32_t sim, std::uint32_t field, open_file& f);

  std::string dir_;
  std::vector<std::string> field_names_;
  std::vector<std::vector<double>> parameters_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, open_file> open_;
  std::set<std::uint32_t> finished_sims_;
  std::uint64_t steps_after_finish_ = 0;
};

// The simulations whose files in `dir` are complete (the state of a dataset
// server that restarts): every field's final <field>.npy (never a .part) is
// a float32 C-order array of shape (steps, field_sizes[f]) whose size
// matches its header, and parameters.npy (written last by finish()) holds
// exactly parameters[sim] (so a directory left by another study with other
// parameters does not count). Ascending. Unreadable entries just do not
// count; nothing is modified.
std::vector<std::uint32_t> complete_simulations(const std::string& dir,
                                                const std::vector<std::string>& field_names,
                                                const std::vector<std::uint64_t>& field_sizes,
                                                std::uint32_t steps,
                                                const std::vector<std::vector<double>>& parameters);

}  // namespace melissa
