// Sample assembly (actors/reservoir/sample_assembler.hpp): a stored step
// becomes an encoded input row and a float32 target; a sample becomes one
// batch row. Only what the assembler cannot read is refused: a step's size
// against the study is checked where it enters the server, not here.
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/reservoir/sample_assembler.hpp"

using namespace melissa;

namespace {

template <class T>
std::vector<char> bytes_of(const std::vector<T>& values) {
  std::vector<char> b(values.size() * sizeof(T));
  std::memcpy(b.data(), values.data(), b.size());
  return b;
}

// Two parameters in [0, 10] and [0, 1], 10 time steps; simulation `sim` has
// (sim, 0.5); simulation 99 is unknown, 98 has one parameter too few.
struct fixture {
  int lookups = 0;
  sample_assembler assembler{sample_encoder{{0, 0}, {10, 1}, 10},
                             [this](std::uint32_t sim) -> std::vector<double> {
                               ++lookups;
                               if (sim == 99) throw std::out_of_range("no simulation 99");
                               if (sim == 98) return {1.0};
                               return {static_cast<double>(sim), 0.5};
                             }};

  training_sample f32(std::uint32_t sim, std::uint32_t step, const std::vector<float>& values) {
    const auto b = bytes_of(values);
    return assembler.assemble(sim, step, wire::dtype::f32, values.size(), b.data(), b.size());
  }
};

}  // namespace

TEST_CASE("a float32 step becomes its encoded input row and its values as target") {
  fixture f;
  const auto s = f.f32(4, 3, {1.5f, -2.f, 3.25f});
  CHECK(s.sim_id == 4);
  CHECK(s.time_step == 3);
  CHECK(s.input == std::vector<float>{0.4f, 0.5f, 0.3f});  // (4 / 10, 0.5, 3 / 10)
  REQUIRE(static_cast<bool>(s.target));
  CHECK(*s.target == std::vector<float>{1.5f, -2.f, 3.25f});
}

TEST_CASE("a float64 step is converted to float32") {
  fixture f;
  const auto b = bytes_of(std::vector<double>{605.0, 605.25});
  const auto s = f.assembler.assemble(6, 5, wire::dtype::f64, 2, b.data(), b.size());
  REQUIRE(static_cast<bool>(s.target));
  CHECK(*s.target == std::vector<float>{605.f, 605.25f});
  CHECK(s.input == std::vector<float>{0.6f, 0.5f, 0.5f});
}

TEST_CASE("parameters are looked up once per simulation until it is forgotten") {
  fixture f;
  f.f32(1, 0, {0.f});
  f.f32(1, 1, {0.f});
  f.f32(2, 0, {0.f});
  CHECK(f.lookups == 2);
  CHECK(f.assembler.cached_simulations() == 2);
  f.assembler.forget(1);
  CHECK(f.assembler.cached_simulations() == 1);
  f.f32(1, 2, {0.f});
  CHECK(f.lookups == 3);
}

TEST_CASE("the field size is not re-checked: the client session checks it against the study") {
  fixture f;
  CHECK(f.f32(1, 0, {1.f, 2.f, 3.f, 4.f}).target->size() == 4);
  CHECK(f.f32(1, 1, {1.f, 2.f}).target->size() == 2);
}

TEST_CASE("what the assembler cannot read is refused, naming why") {
  fixture f;
  const auto four = bytes_of(std::vector<float>{1, 2, 3, 4});
  auto why = [&](std::uint32_t sim, wire::dtype type, std::uint64_t count, std::size_t bytes) {
    try {
      f.assembler.assemble(sim, 0, type, count, four.data(), bytes);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(why(1, wire::dtype::text, 16, 16).find("must be f32 or f64") != std::string::npos);
  CHECK(why(1, wire::dtype::f32, 5, 16) == "payload of 16 bytes for 5 values");  // out of bounds
  CHECK(why(1, wire::dtype::f64, 4, 16) == "payload of 16 bytes for 4 values");
  CHECK(why(99, wire::dtype::f32, 4, 16) == "no parameters: no simulation 99");
  CHECK(why(98, wire::dtype::f32, 4, 16) ==
        "simulation 98 has 1 parameters, the encoder expects 2");
  CHECK(why(1, wire::dtype::f32, 4, 16) == "accepted");
  CHECK_THROWS_AS(sample_assembler(sample_encoder{}, nullptr), std::invalid_argument);
}

TEST_CASE("samples become batch rows, in order, counted in the batch's size") {
  fixture f;
  const auto a = f.f32(4, 3, {403.f, 403.25f});
  const auto b = f.f32(6, 5, {605.f, 605.25f});
  auto batch = begin_batch(2, 3, 2);
  CHECK(batch.size == 0);
  CHECK(batch.input_dim == 3);
  CHECK(batch.output_dim == 2);
  CHECK(batch.inputs.capacity() >= 6);
  CHECK(batch.targets.capacity() >= 4);
  append_row(a, batch);
  append_row(b, batch);
  CHECK(batch.size == 2);
  CHECK_FALSE(batch.last);
  CHECK(batch.inputs == std::vector<float>{0.4f, 0.5f, 0.3f, 0.6f, 0.5f, 0.5f});
  CHECK(batch.targets == std::vector<float>{403.f, 403.25f, 605.f, 605.25f});
  CHECK(batch.sim_ids == std::vector<std::uint32_t>{4, 6});
  CHECK(batch.time_steps == std::vector<std::uint32_t>{3, 5});
}
