// Minimal NumPy .npy files (format version 1.0), header-only, no dependency.
//
// Writing: npy::Writer streams rows into a C-order array whose shape is known
// up front (a dataset written one time step at a time); npy::save writes a
// whole array. Reading: npy::load_header parses the header of a file written
// by this code or by numpy.save (little-endian, C or Fortran order), so the
// server and the tests can read datasets back.
//
// Format: "\x93NUMPY", major 1, minor 0, uint16 little-endian header length,
// then an ASCII dict "{'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }"
// padded with spaces and ending in '\n', so that the data starts at a
// multiple of 64 bytes; then the raw little-endian data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace melissa::npy {

template <class T>
constexpr const char* descr() {
  static_assert(std::is_arithmetic_v<T>, "npy: arithmetic types only");
  if constexpr (std::is_same_v<T, float>) return "<f4";
  else if constexpr (std::is_same_v<T, double>) return "<f8";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
  else if constexpr (std::is_same_v<T, std::uint32_t>) return "<u4";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "<u8";
  else return nullptr;
}

// The complete header (magic to '\n') for a C-order array, padded to a
// multiple of 64 bytes and to at least `min_length` (so that a writer can
// reserve room and rewrite the header in place once the shape is known).
inline std::string header(const char* descr, const std::vector<std::size_t>& shape,
                          std::size_t min_length = 0) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";  // (5,) is a tuple, (5) is not
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  const std::size_t preamble = 10;  // magic 6 + version 2 + length 2
  std::size_t total = preamble + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  while (total < min_length) total += 64;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict += '\n';
  if (dict.size() > 0xffff) throw std::length_error("npy: header too long for format 1.0");
  std::string h("\x93NUMPY\x01\x00", 8);
  h += static_cast<char>(dict.size() & 0xff);
  h += static_cast<char>((dict.size() >> 8) & 0xff);
  return h + dict;
}

// Streams a C-order array of a known shape, row by row (first index).
template <class T>
class Writer {
 public:
  Writer(const std::string& path, const std::vector<std::size_t>& shape) : path_(path) {
    row_ = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) row_ *= shape[i];
    rows_ = shape.empty() ? 1 : shape[0];
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) throw std::runtime_error("npy: cannot create " + path);
    const std::string h = header(descr<T>(), shape);
    if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) fail();
  }
  ~Writer() {
    if (file_) std::fclose(file_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  std::size_t row_size() const { return row_; }
  std::size_t rows_written() const { return written_; }

  // Appends one row of row_size() values.
  void write_row(const T* values) {
    if (written_ >= rows_) throw std::logic_error("npy: more rows than the shape says in " + path_);
    if (std::fwrite(values, sizeof(T), row_, file_) != row_) fail();
    ++written_;
  }

  // Closes the file; throws if fewer rows were written than announced (the
  // file would not load).
  void close() {
    if (!file_) return;
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok) throw std::runtime_error("npy: cannot write " + path_);
    if (written_ != rows_)
      throw std::logic_error("npy: " + path_ + " has " + std::to_string(written_) + " rows of " +
                             std::to_string(rows_));
  }

 private:
  [[noreturn]] void fail() { throw std::runtime_error("npy: cannot write " + path_); }
  std::string path_;
  std::FILE* file_ = nullptr;
  std::size_t row_ = 1, rows_ = 1, written_ = 0;
};

// Writes a whole C-order array.
template <class T>
void save(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
  Writer<T> w(path, shape);
  std::size_t rows = shape.empty() ? 1 : shape[0];
  for (std::size_t i = 0; i < rows; ++i) w.write_row(data + i * w.row_size());
  w.close();
}

struct Header {
  std::string descr;                // e.g. "<f4"
  bool fortran_order = false;
  std::vector<std::size_t> shape;
  std::size_t data_offset = 0;      // bytes from the start of the file
  std::size_t count() const {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

// Parses the header of an open file (read from its start).
inline Header read_header(std::FILE* f, const std::string& name = "npy file") {
  unsigned char pre[10];
  if (std::fread(pre, 1, 10, f) != 10 || std::string(reinterpret_cast<char*>(pre), 6) != "\x93NUMPY")
    throw std::runtime_error(name + ": not a .npy file");
  std::size_t len, offset;
  if (pre[6] == 1) {
    len = pre[8] | (pre[9] << 8);
    offset = 10;
  } else if (pre[6] == 2 || pre[6] == 3) {
    unsigned char more[2];
    if (std::fread(more, 1, 2, f) != 2) throw std::runtime_error(name + ": truncated header");
    len = pre[8] | (pre[9] << 8) | (std::size_t(more[0]) << 16) | (std::size_t(more[1]) << 24);
    offset = 12;
  } else {
    throw std::runtime_error(name + ": unsupported .npy version " + std::to_string(pre[6]));
  }
  std::string dict(len, '\0');
  if (std::fread(dict.data(), 1, len, f) != len) throw std::runtime_error(name + ": truncated header");
  Header h;
  h.data_offset = offset + len;
  auto value_after = [&](const char* key) {
    const std::size_t at = dict.find(key);
    if (at == std::string::npos) throw std::runtime_error(name + ": header lacks " + key);
    std::size_t colon = dict.find(':', at);
    std::size_t start = dict.find_first_not_of(' ', colon + 1);
    return start;
  };
  std::size_t at = value_after("'descr'");
  const char quote = dict[at];
  std::size_t end = dict.find(quote, at + 1);
  h.descr = dict.substr(at + 1, end - at - 1);
  at = value_after("'fortran_order'");
  h.fortran_order = dict.compare(at, 4, "True") == 0;
  at = value_after("'shape'");
  end = dict.find(')', at);
  std::size_t i = at + 1;
  while (i < end) {
    while (i < end && (dict[i] == ' ' || dict[i] == ',')) ++i;
    if (i >= end) break;
    std::size_t used = 0;
    h.shape.push_back(std::stoull(dict.substr(i, end - i), &used));
    i += used;
  }
  return h;
}

template <class T>
struct Array {
  std::vector<std::size_t> shape;
  std::vector<T> data;  // C order
};

// Loads a whole little-endian C-order array of exactly type T.
template <class T>
Array<T> load(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("npy: cannot open " + path);
  try {
    Header h = read_header(f, path);
    if (h.descr != descr<T>())
      throw std::runtime_error(path + ": dtype " + h.descr + ", expected " + descr<T>());
    if (h.fortran_order) throw std::runtime_error(path + ": Fortran order is not supported");
    Array<T> a;
    a.shape = h.shape;
    a.data.resize(h.count());
    if (std::fread(a.data.data(), sizeof(T), a.data.size(), f) != a.data.size())
      throw std::runtime_error(path + ": truncated data");
    std::fclose(f);
    return a;
  } catch (...) {
    std::fclose(f);
    throw;
  }
}

}  // namespace melissa::npy
