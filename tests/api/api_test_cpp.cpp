// The C++ wrapper (melissa/api.hpp) against the fake server: exceptions carry
// the status and the library's message, vectors are size-checked, and the
// session finalizes at scope exit.
#include <cstdio>
#include <cstring>
#include <vector>

#include "melissa/api.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

template <typename F>
int status_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const melissa::error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return MELISSA_OK;
}

}  // namespace

int main() {
  std::string message;
  expect(status_of([] { melissa::check(melissa_send("temperature", nullptr)); }, &message) ==
                 MELISSA_ERR_ORDER &&
             message.find("called before melissa_init") != std::string::npos,
         "a failed call throws melissa::error with status and message");
  {
    melissa::session session;
    melissa::field temperature("temperature", 3);  // no MPI
    expect(session.sim_id() == 5, "session::sim_id() reports MELISSA_SIM_ID");
    temperature.send(std::vector<double>{0.5, 1.5, 2.5});
    temperature.send(std::vector<float>{100000.5f, 100001.5f, 100002.5f});
    expect(status_of([&] { temperature.send(std::vector<double>{1.0}); }, &message) ==
                   MELISSA_ERR_ARG &&
               message.find("has local size 3, got 1 values") != std::string::npos,
           "a vector of the wrong size throws before anything is sent");
    expect(status_of([] { melissa::field again("temperature", 3); }) == MELISSA_ERR_ORDER,
           "a second field object for the same name throws MELISSA_ERR_ORDER");
  }  // the session finalizes here: the test checks that end reached the server
  expect(melissa_finalize() == MELISSA_ERR_ORDER, "the destructor did finalize");
  std::printf("%d failures\n", failures);
  return failures == 0 ? 0 : 4;
}
