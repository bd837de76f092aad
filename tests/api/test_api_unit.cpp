// Unit tests of the client API's pure parts: the environment parsing and the
// credit window. The socket and MPI behaviour is tested against the fake
// server (test_api_client.py).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "credit_window.hpp"
#include "environment.hpp"
#include "error.hpp"

using namespace melissa::client;

namespace {

env_lookup from(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// The message of the client_error that `f` throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const client_error& e) {
    CHECK(e.status() == MELISSA_ERR_ENV);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("server addresses: one per rank, IPv4, names and bracketed IPv6") {
  const auto a = parse_server_addresses("127.0.0.1:5000, node-2.cluster:6000,[::1]:7000");
  REQUIRE(a.size() == 3);
  CHECK(a[0].host == "127.0.0.1");
  CHECK(a[0].port == "5000");
  CHECK(a[1].host == "node-2.cluster");
  CHECK(a[2].host == "::1");
  CHECK(a[2].text() == "[::1]:7000");
  CHECK(a[1].text() == "node-2.cluster:6000");
}

TEST_CASE("server addresses: malformed entries are named") {
  CHECK(error_of([] { parse_server_addresses("localhost"); }).find("'localhost' is not host:port") !=
        std::string::npos);
  CHECK(error_of([] { parse_server_addresses("a:1,,b:2"); }).find("empty entry") != std::string::npos);
  CHECK(error_of([] { parse_server_addresses("a:99999"); }).find("no valid port") != std::string::npos);
  CHECK(error_of([] { parse_server_addresses("a:0"); }).find("no valid port") != std::string::npos);
  CHECK(error_of([] { parse_server_addresses(":80"); }).find("no host") != std::string::npos);
  CHECK(error_of([] { parse_server_addresses("::1:80"); }).find("not host:port") != std::string::npos);
  CHECK(error_of([] { parse_server_addresses("[::1]80"); }).find("[host]:port") != std::string::npos);
}

TEST_CASE("environment: defaults") {
  const auto env = read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "12"}}));
  CHECK(env.servers.size() == 1);
  CHECK(env.sim_id == 12);
  CHECK(env.attempt == 1);
  CHECK(env.connect_timeout_s == 60.0);
  CHECK(env.on_error == error_policy::exit);
}

TEST_CASE("environment: every variable read") {
  const auto env = read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1,h:2"},
                                          {"MELISSA_SIM_ID", "0"},
                                          {"MELISSA_ATTEMPT", "3"},
                                          {"MELISSA_CONNECT_TIMEOUT", "0.5"},
                                          {"MELISSA_ON_ERROR", "return"}}));
  CHECK(env.servers.size() == 2);
  CHECK(env.sim_id == 0);
  CHECK(env.attempt == 3);
  CHECK(env.connect_timeout_s == 0.5);
  CHECK(env.on_error == error_policy::return_status);
}

TEST_CASE("environment: missing and malformed variables get clear messages") {
  CHECK(error_of([] { read_environment(from({{"MELISSA_SIM_ID", "1"}})); })
            .find("MELISSA_SERVER_ADDRESSES is not set") != std::string::npos);
  CHECK(error_of([] { read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}})); })
            .find("MELISSA_SIM_ID is not set") != std::string::npos);
  CHECK(error_of([] {
          read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "-1"}}));
        }).find("MELISSA_SIM_ID='-1' is not a non-negative integer") != std::string::npos);
  CHECK(error_of([] {
          read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "99999999999"}}));
        }).find("too large") != std::string::npos);
  CHECK(error_of([] {
          read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "1"},
                                 {"MELISSA_ATTEMPT", "0"}}));
        }).find("attempts count from 1") != std::string::npos);
  CHECK(error_of([] {
          read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "1"},
                                 {"MELISSA_CONNECT_TIMEOUT", "soon"}}));
        }).find("MELISSA_CONNECT_TIMEOUT='soon'") != std::string::npos);
  CHECK(error_of([] {
          read_environment(from({{"MELISSA_SERVER_ADDRESSES", "h:1"}, {"MELISSA_SIM_ID", "1"},
                                 {"MELISSA_CONNECT_TIMEOUT", "0"}}));
        }).find("positive number") != std::string::npos);
  CHECK(error_of([] { read_error_policy(from({{"MELISSA_ON_ERROR", "ignore"}})); })
            .find("must be 'exit' or 'return'") != std::string::npos);
}

TEST_CASE("credit window: sends within the window, blocks beyond it") {
  credit_window w(1000);
  CHECK(w.may_send(600));
  w.on_sent(600);
  CHECK(w.may_send(400));
  CHECK_FALSE(w.may_send(401));
  w.on_sent(400);
  CHECK_FALSE(w.may_send(1));
  w.on_credit(600);
  CHECK(w.may_send(600));
  CHECK_FALSE(w.may_send(601));
  w.on_credit(400);
  CHECK(w.nothing_outstanding());
}

TEST_CASE("credit window: a frame larger than the window when nothing is outstanding") {
  credit_window w(100);
  CHECK(w.may_send(400));  // would otherwise never be sendable
  w.on_sent(400);
  CHECK(w.available() == -300);
  CHECK_FALSE(w.may_send(400));
  w.on_credit(300);
  CHECK_FALSE(w.may_send(400));  // 100 bytes still outstanding
  w.on_credit(100);
  CHECK(w.may_send(400));
}

TEST_CASE("credit window: grants add up, and absurd grants do not overflow") {
  credit_window w(100);
  w.on_credit(50);  // the server may grant beyond the initial window
  CHECK(w.may_send(150));
  w.on_sent(150);
  CHECK_FALSE(w.may_send(1));
  w.on_credit(~0ull);
  w.on_credit(~0ull);
  CHECK(w.available() > 0);
  credit_window zero(0);  // stop-and-wait: one frame at a time
  CHECK(zero.may_send(10));
  zero.on_sent(10);
  CHECK_FALSE(zero.may_send(10));
  zero.on_credit(10);
  CHECK(zero.may_send(10));
}
