// The study monitor's HTTP server (docs/monitor.md): cpp-httplib on threads of
// its own, every request handed to monitor_api. The server never touches the
// launcher: its live figures come through a study_source (live_source.hpp:
// CAF requests to the launcher).
//
//   monitor_server server(api, "127.0.0.1", 0);   // binds; throws on failure
//   server.start();                                // serves on its threads
//   write_monitor_file(output_dir, server.url(token), token);
//   ...
//   server.stop(); remove_monitor_file(output_dir);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "actors/monitor/monitor_api.hpp"

namespace httplib {
class Server;
}

namespace melissa::monitor {

class monitor_server {
 public:
  // Binds host:port (port 0: any free port). Throws std::runtime_error naming
  // the address when it cannot.
  monitor_server(std::shared_ptr<monitor_api> api, std::string host, std::uint16_t port);
  ~monitor_server();
  monitor_server(const monitor_server&) = delete;
  monitor_server& operator=(const monitor_server&) = delete;

  void start();
  void stop();  // idempotent; waits for the server's thread
  std::uint16_t port() const { return port_; }
  // http://HOST:PORT/?token=TOKEN, HOST as given to `url_host` (the bound
  // address, or the machine's name for a wildcard bind).
  std::string url(const std::string& url_host, const std::string& token) const;

 private:
  std::shared_ptr<monitor_api> api_;
  std::unique_ptr<httplib::Server> server_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// <output_dir>/monitor.json = {"url", "host", "port", "token"}, mode 0600,
// written atomically (as shell.json). Throws naming the path.
void write_monitor_file(const std::string& output_dir, const std::string& url,
                        const std::string& host, std::uint16_t port, const std::string& token);
void remove_monitor_file(const std::string& output_dir);

}  // namespace melissa::monitor
