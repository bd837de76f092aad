// The study monitor's REST API and dashboard routes (docs/monitor.md), as
// plain C++: a request in, a reply out. No CAF and no HTTP library here, so
// that the routing, the token check, the input checks and the JSON are unit
// tested with a fake study (tests/monitor/test_monitor_api.cpp).
// monitor_server.cpp adapts cpp-httplib to it; the figures come from a
// study_source: the live launcher (live_source.hpp, through CAF) or a finished
// study's files (archive_source.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/monitor/study_source.hpp"

namespace melissa::monitor {

struct http_request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::multimap<std::string, std::string> params;  // the query, decoded
  std::string authorization;  // the Authorization header ("" when absent)
  std::string cookie;         // the Cookie header ("" when absent)
  std::string body;
};

struct http_reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers (Set-Cookie, Location, ...)
};

// The cookie that the dashboard's URL (?token=...) sets: this name followed
// by "_<port>" once the port is known (set_port), because a browser sends a
// host's cookies to all its ports, and two studies on one machine must not
// overwrite each other's token.
inline constexpr const char* token_cookie = "melissa_monitor_token";

// A file the dashboard needs, served at /static/<name>.
struct static_asset {
  std::string content_type;
  std::string body;
};

class monitor_api {
 public:
  // `token`: the study's (the one shell.json holds); `output_dir`: where
  // metrics/metrics.csv and breed-provenance.csv are read; `parameter_names`:
  // the study's, for the Breed scatter; `assets`: name -> file (index.html is
  // served at /).
  monitor_api(std::shared_ptr<study_source> source, std::string token, std::string output_dir,
              std::vector<std::string> parameter_names,
              std::map<std::string, static_asset> assets);

  // Never throws: anything unexpected becomes a 500 with the reason.
  http_reply handle(const http_request& req) const;
  // Before serving: the cookie becomes token_cookie + "_" + port.
  void set_port(std::uint16_t port);
  const std::string& cookie_name() const { return cookie_name_; }

 private:
  http_reply route(const http_request& req) const;
  http_reply training(const http_request& req) const;
  http_reply steering() const;

  std::shared_ptr<study_source> source_;
  std::string token_, output_dir_;
  std::string cookie_name_ = token_cookie;
  std::vector<std::string> parameter_names_;
  std::map<std::string, static_asset> assets_;
};

// --- pieces, exposed for the tests ---

// The tokens a request carries, in this order: the bearer of its
// Authorization header, the ?token= parameter, the cookies named
// `cookie_name` (a stale cookie must not hide a fresh URL's token).
std::vector<std::string> request_tokens(const http_request& req, const std::string& cookie_name);
// A decimal job id (1 .. 2^32-1), nothing else; false otherwise.
bool parse_job_id(const std::string& text, std::uint32_t& id);
// The HTTP status of a launcher's JSON answer: 200 when {"ok": true}; 404 for
// "no job N", 503 when the launcher did not answer, 409 for any other refusal.
int status_of_answer(const std::string& json_text);

// At most this many metrics rows per /api/training answer ("more": true says
// that the next `since` gets the rest): a fast trainer writes thousands.
inline constexpr std::size_t max_training_rows = 5000;

// {"columns", "rows", "more"}: metrics.csv rows whose step is greater than
// `since`, as JSON objects (empty cells left out), at most `max_rows`. A
// missing file gives no rows.
std::string metrics_rows_json(const std::string& csv_path, long long since,
                              std::size_t max_rows = max_training_rows);

}  // namespace melissa::monitor
