#include "actors/trainer/dataset/dataset_reader.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "messages/npy.hpp"

namespace fs = std::filesystem;

namespace melissa {
namespace {

std::string sim_folder(std::uint32_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim_%06u", id);  // as dataset_writer::sim_dir_name
  return buf;
}

// "sim_000012" -> 12; false for any other name.
bool parse_sim_folder(const std::string& name, std::uint32_t& id) {
  if (name.size() < 5 || name.size() > 14 || name.compare(0, 4, "sim_") != 0) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 4; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  if (v > 0xffffffffu) return false;
  id = static_cast<std::uint32_t>(v);
  return true;
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "") +
         (i + 1 < shape.size() ? " " : "");
  return s + ")";
}

void require_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw std::runtime_error(path + ": no such file (an unfinished or incomplete simulation?)");
}

// One simulation: its parameters and its field file mapped read-only.
struct mapped_simulation {
  std::uint32_t id = 0;
  std::vector<double> parameters;
  void* map = MAP_FAILED;
  std::size_t map_bytes = 0;
  const char* rows = nullptr;  // start of the float32 data inside the mapping
  std::uint32_t steps = 0;

  mapped_simulation() = default;
  mapped_simulation(const mapped_simulation&) = delete;
  mapped_simulation& operator=(const mapped_simulation&) = delete;
  mapped_simulation(mapped_simulation&& o) noexcept { *this = std::move(o); }
  mapped_simulation& operator=(mapped_simulation&& o) noexcept {
    std::swap(id, o.id);
    std::swap(parameters, o.parameters);
    std::swap(map, o.map);
    std::swap(map_bytes, o.map_bytes);
    std::swap(rows, o.rows);
    std::swap(steps, o.steps);
    return *this;
  }
  ~mapped_simulation() {
    if (map != MAP_FAILED) ::munmap(map, map_bytes);
  }
};

// Maps `path`, checks it is float32 (steps, size); returns its field size.
std::uint64_t map_field(const std::string& path, mapped_simulation& sim) {
  require_file(path);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct closer {
    std::FILE* f;
    ~closer() { std::fclose(f); }
  } close_at_exit{f};

  npy::Header h;
  try {
    h = npy::read_header(f, path);
  } catch (const std::logic_error&) {  // std::stoull on a garbled shape
    throw std::runtime_error(path + ": unreadable .npy header");
  }
  if (h.descr != "<f4")
    throw std::runtime_error(path + ": dtype " + h.descr + ", expected <f4 (float32)");
  if (h.fortran_order) throw std::runtime_error(path + ": Fortran order is not supported");
  if (h.shape.size() != 2)
    throw std::runtime_error(path + ": shape " + shape_text(h.shape) +
                             ", expected (time steps, field size)");
  if (h.shape[0] > 0xffffffffu) throw std::runtime_error(path + ": too many time steps");

  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0)
    throw std::runtime_error(path + ": cannot stat: " + std::strerror(errno));
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t data_bytes = std::uint64_t(h.shape[0]) * h.shape[1] * sizeof(float);
  if (file_bytes < h.data_offset + data_bytes)
    throw std::runtime_error(path + ": truncated: " + std::to_string(file_bytes) +
                             " bytes, its shape " + shape_text(h.shape) + " needs " +
                             std::to_string(h.data_offset + data_bytes));

  // The whole file from 0: the data offset (64 or 128) is not page-aligned.
  void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, ::fileno(f), 0);
  if (map == MAP_FAILED) throw std::runtime_error(path + ": cannot map: " + std::strerror(errno));
  sim.map = map;
  sim.map_bytes = file_bytes;
  sim.rows = static_cast<const char*>(map) + h.data_offset;
  sim.steps = static_cast<std::uint32_t>(h.shape[0]);
  return h.shape[1];
}

std::vector<double> load_parameters(const std::string& path, std::size_t expected) {
  require_file(path);
  npy::Array<double> a;
  try {
    a = npy::load<double>(path);  // its errors name the path and the dtype
  } catch (const std::logic_error&) {
    throw std::runtime_error(path + ": unreadable .npy header");
  }
  if (a.data.size() != expected)
    throw std::runtime_error(path + ": " + std::to_string(a.data.size()) + " parameters, expected " +
                             std::to_string(expected) + " (the sample encoder's bounds)");
  return std::move(a.data);
}

}  // namespace

struct dataset_reader::state {
  std::string dir, field;
  sample_encoder encoder;
  std::vector<mapped_simulation> sims;
  std::vector<dataset_sample> samples;
  std::vector<std::uint32_t> sample_sim;  // per sample: index into sims
  std::uint32_t output_dim = 0;
  std::uint32_t max_steps = 0;
};

std::vector<std::uint32_t> dataset_reader::list_simulations(const std::string& dir,
                                                            const std::string& field) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + ": no such dataset directory");
  std::vector<std::uint32_t> ids;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::uint32_t id;
    if (entry.is_directory() && parse_sim_folder(entry.path().filename().string(), id) &&
        fs::exists(entry.path() / (field + ".npy")))
      ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

dataset_reader::dataset_reader(const std::string& dir, const std::string& field,
                               sample_encoder encoder,
                               const std::vector<std::uint32_t>& simulations)
    : state_(std::make_unique<state>()) {
  auto& s = *state_;
  s.dir = dir;
  s.field = field;
  s.encoder = std::move(encoder);
  if (s.encoder.lo.size() != s.encoder.hi.size() || !(s.encoder.time_scale > 0))
    throw std::invalid_argument("dataset: sample encoder needs lo/hi of one size and time_scale > 0");

  std::vector<std::uint32_t> ids = simulations.empty() ? list_simulations(dir, field) : simulations;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty())
    throw std::runtime_error(dir + ": no simulation folder (sim_NNNNNN) holds " + field + ".npy");

  std::string first_path;
  for (auto id : ids) {
    const std::string sim_dir = dir + "/" + sim_folder(id);
    mapped_simulation sim;
    sim.id = id;
    const std::string field_path = sim_dir + "/" + field + ".npy";
    const std::uint64_t size = map_field(field_path, sim);
    if (first_path.empty()) {
      if (size == 0 || size > 0xffffffffu)
        throw std::runtime_error(field_path + ": field size " + std::to_string(size));
      s.output_dim = static_cast<std::uint32_t>(size);
      first_path = field_path;
    } else if (size != s.output_dim) {
      throw std::runtime_error(field_path + ": field size " + std::to_string(size) + ", but " +
                               first_path + " has " + std::to_string(s.output_dim));
    }
    sim.parameters = load_parameters(sim_dir + "/parameters.npy", s.encoder.lo.size());
    s.max_steps = std::max(s.max_steps, sim.steps);
    for (std::uint32_t t = 0; t < sim.steps; ++t) {
      s.samples.push_back({id, t});
      s.sample_sim.push_back(static_cast<std::uint32_t>(s.sims.size()));
    }
    s.sims.push_back(std::move(sim));
  }
  if (s.samples.empty()) throw std::runtime_error(dir + ": the " + field + " files hold no time step");
}

dataset_reader::~dataset_reader() = default;
dataset_reader::dataset_reader(dataset_reader&&) noexcept = default;
dataset_reader& dataset_reader::operator=(dataset_reader&&) noexcept = default;

const std::vector<dataset_sample>& dataset_reader::samples() const { return state_->samples; }
std::size_t dataset_reader::simulation_count() const { return state_->sims.size(); }
std::uint32_t dataset_reader::max_time_steps() const { return state_->max_steps; }
std::uint32_t dataset_reader::input_dim() const { return state_->encoder.input_dim(); }
std::uint32_t dataset_reader::output_dim() const { return state_->output_dim; }
const sample_encoder& dataset_reader::encoder() const { return state_->encoder; }
const std::string& dataset_reader::directory() const { return state_->dir; }
const std::string& dataset_reader::field() const { return state_->field; }

void dataset_reader::fill(const std::size_t* indices, std::size_t count, training_batch& out) const {
  const auto& s = *state_;
  const std::uint32_t in_dim = input_dim(), out_dim = s.output_dim;
  out.size = static_cast<std::uint32_t>(count);
  out.input_dim = in_dim;
  out.output_dim = out_dim;
  out.last = false;
  out.inputs.resize(count * in_dim);
  out.targets.resize(count * out_dim);
  out.sim_ids.resize(count);
  out.time_steps.resize(count);
  const std::size_t row_bytes = std::size_t(out_dim) * sizeof(float);
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t i = indices[k];
    if (i >= s.samples.size())
      throw std::out_of_range("dataset: sample " + std::to_string(i) + " of " +
                              std::to_string(s.samples.size()));
    const auto& sample = s.samples[i];
    const auto& sim = s.sims[s.sample_sim[i]];
    s.encoder.encode(sim.parameters.data(), sample.time_step, out.inputs.data() + k * in_dim);
    // memcpy, not a float pointer: the data offset need not be float-aligned.
    std::memcpy(out.targets.data() + k * out_dim, sim.rows + sample.time_step * row_bytes, row_bytes);
    out.sim_ids[k] = sample.sim_id;
    out.time_steps[k] = sample.time_step;
  }
}

training_batch_ptr dataset_reader::batch(const std::vector<std::size_t>& indices) const {
  auto b = std::make_shared<training_batch>();
  fill(indices.data(), indices.size(), *b);
  return b;
}

training_batch_ptr dataset_reader::all() const {
  std::vector<std::size_t> every(size());
  for (std::size_t i = 0; i < every.size(); ++i) every[i] = i;
  return batch(every);
}

training_batch_ptr load_dataset(const std::string& dir, const std::string& field,
                                const sample_encoder& encoder,
                                const std::vector<std::uint32_t>& simulations) {
  return dataset_reader(dir, field, encoder, simulations).all();
}

}  // namespace melissa
