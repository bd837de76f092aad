// Writes a study's data as it arrives: one folder per simulation holding one
// .npy file per field (float32, shape (time steps, field size), row t = step t)
// and parameters.npy (float64). Rows are written in place as steps arrive, in
// any order; the header gets its final shape when the simulation is finished.
// This is the layout the heat solver's dataset mode and the offline trainer use:
//   <dir>/sim_000012/temperature.npy   <dir>/sim_000012/parameters.npy
// Plain C++, no CAF.
#pragma once

#include <cstdint>
#include <map>
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

  void write_step(std::uint32_t sim, std::uint32_t field, std::uint32_t step, const float* values,
                  std::uint64_t count);
  // Fixes the headers and writes parameters.npy; the simulation's files are complete.
  void finish(std::uint32_t sim);
  // Finishes every simulation still open (the study ends); returns their ids.
  std::vector<std::uint32_t> finish_all();

  static std::string sim_dir_name(std::uint32_t sim);
  const std::string& dir() const { return dir_; }
  std::uint64_t finished() const { return finished_; }

 private:
  struct open_file {
    int fd = -1;
    std::uint64_t count = 0;  // values per row
    std::uint32_t rows = 0;   // highest step written + 1
  };
  open_file& file_for(std::uint32_t sim, std::uint32_t field, std::uint64_t count);

  std::string dir_;
  std::vector<std::string> field_names_;
  std::vector<std::vector<double>> parameters_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, open_file> open_;
  std::uint64_t finished_ = 0;
};

}  // namespace melissa
