// The per-step checksum and the per-simulation wrapping sum (messages/checksum.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "messages/checksum.hpp"

using melissa::checksum_hex;
using melissa::step_checksum;

namespace {

// A simulation's steps as the server would receive them.
std::vector<std::vector<float>> some_steps(std::size_t steps, std::size_t size) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-1, 1);
  std::vector<std::vector<float>> out(steps, std::vector<float>(size));
  for (auto& s : out) std::generate(s.begin(), s.end(), [&] { return value(rng); });
  return out;
}

std::uint64_t checksum_of(const std::vector<float>& step, std::uint32_t index) {
  return step_checksum(index, step.data(), step.size() * sizeof(float));
}

// Sum in the given arrival order: (index, step) pairs.
std::uint64_t sum_in_order(const std::vector<std::vector<float>>& steps,
                           const std::vector<std::uint32_t>& order) {
  std::uint64_t sum = 0;
  for (std::uint32_t i : order) sum += checksum_of(steps[i], i);  // wraps mod 2^64
  return sum;
}

}  // namespace

TEST_CASE("step checksum: deterministic, and pinned to XXH3-64") {
  const std::vector<float> step = {1.0f, 2.0f, 3.0f};
  CHECK(checksum_of(step, 4) == checksum_of(step, 4));
  // XXH3_64bits of no bytes with seed 0 (xxHash reference value), so that a
  // client in another language can compute the same checksums.
  CHECK(step_checksum(0, nullptr, 0) == 0x2d06800538d394c2ull);
}

TEST_CASE("step checksum: changes with the step index and with the data") {
  std::vector<float> step = {1.0f, 2.0f, 3.0f};
  const std::uint64_t base = checksum_of(step, 4);
  CHECK(checksum_of(step, 5) != base);
  CHECK(checksum_of(step, 0) != base);
  step[1] = std::nextafter(2.0f, 3.0f);
  CHECK(checksum_of(step, 4) != base);
}

TEST_CASE("simulation checksum: the wrapping sum does not depend on arrival order") {
  const auto steps = some_steps(50, 64);
  std::vector<std::uint32_t> order(steps.size());
  std::iota(order.begin(), order.end(), 0u);
  const std::uint64_t in_order = sum_in_order(steps, order);
  std::mt19937 rng(3);
  for (int i = 0; i < 10; ++i) {
    std::shuffle(order.begin(), order.end(), rng);
    CHECK(sum_in_order(steps, order) == in_order);
  }
  // 50 random 64-bit values: the sum wrapped, which must not matter.
  std::uint64_t plain = 0;
  bool wrapped = false;
  for (std::uint32_t i = 0; i < steps.size(); ++i) {
    const std::uint64_t c = checksum_of(steps[i], i);
    wrapped |= plain + c < plain;
    plain += c;
  }
  CHECK(wrapped);
  CHECK(plain == in_order);
}

TEST_CASE("simulation checksum: a missing, duplicated or misplaced step changes it") {
  const auto steps = some_steps(10, 16);
  std::vector<std::uint32_t> order(steps.size());
  std::iota(order.begin(), order.end(), 0u);
  const std::uint64_t all = sum_in_order(steps, order);

  auto missing = order;
  missing.erase(missing.begin() + 4);
  CHECK(sum_in_order(steps, missing) != all);

  auto duplicated = order;
  duplicated.push_back(4);
  CHECK(sum_in_order(steps, duplicated) != all);

  // Steps 2 and 3 stored under each other's index.
  std::uint64_t swapped = all - checksum_of(steps[2], 2) - checksum_of(steps[3], 3) +
                          checksum_of(steps[2], 3) + checksum_of(steps[3], 2);
  CHECK(swapped != all);
}

TEST_CASE("checksum_hex: 16 lowercase hex digits") {
  CHECK(checksum_hex(0) == "0000000000000000");
  CHECK(checksum_hex(0xabcull) == "0000000000000abc");
  CHECK(checksum_hex(0x0123456789abcdefull) == "0123456789abcdef");
  CHECK(checksum_hex(~0ull) == "ffffffffffffffff");
}
