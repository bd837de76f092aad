// The protocol state of one client connection, as seen by the server: the
// handshake, field declarations, validation of every step frame, credits and
// the end of the session. Plain C++ (no CAF), so that every rule is unit-tested
// without sockets; the client_proxy actor feeds it frames and carries out the
// actions it returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "messages/wire.hpp"

namespace melissa {

// A field of the study, as the server knows it.
struct served_field {
  std::string name;
  std::uint64_t size = 0;  // global number of values per time step
};

struct session_settings {
  std::vector<served_field> fields;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  std::string mode = "training";
  std::uint64_t window_bytes = 64ull << 20;  // initial credit granted in welcome
  std::uint32_t max_time_steps = 1u << 24;   // bounds the per-simulation bitsets
  std::uint32_t steps = 0;                   // client.steps: a step index >= it is refused (0: unchecked)
};

// Control frames (hello, field, end, error) carry a few key=value lines: a
// larger one is refused from its header, before anything is allocated.
inline constexpr std::uint64_t max_control_payload = 4096;

class client_session {
 public:
  explicit client_session(session_settings settings) : settings_(std::move(settings)) {}

  // What the proxy does after one frame.
  struct action {
    std::vector<std::uint8_t> reply;  // bytes to send back (may be empty)
    bool check_ticket = false;        // a hello: ask who may open (sim, attempt), then admit()
    bool forward_step = false;        // a valid step: hand it to the aggregator
    bool end_requested = false;       // answer `end` once every step is acknowledged
    std::string error;                // non-empty: violation; `reply` holds an error frame; close
  };

  // Checks a header before its payload is read, so that nothing is allocated
  // for a frame this session would refuse: before the session is admitted
  // only a small hello; then small control frames, and steps of a declared
  // field with the study's size within the credit. Empty when acceptable;
  // otherwise the violation, and error_frame() holds the frame to send.
  std::string admit_header(const wire::frame_header& h) const;
  // A slice's offset (read after its header, before its payload): the
  // values [offset, offset + count) must lie in the field and in this rank's
  // owned share of it (wire::owned_share). Empty when acceptable.
  std::string admit_extension(const wire::frame_header& h) const;
  std::vector<std::uint8_t> error_frame(const std::string& reason) const;

  action on_frame(const wire::frame_header& h, const std::uint8_t* payload, std::size_t n);

  // After a hello: the aggregator accepted the session. Returns the welcome frame.
  std::vector<std::uint8_t> admit();
  const std::string& ticket() const { return ticket_; }
  bool awaiting_admission() const { return hello_seen_ && !opened_; }

  // A step of `bytes` payload bytes was stored (or dropped as a duplicate):
  // its credit goes back to the client. Returns the `credit` frame to send.
  std::vector<std::uint8_t> acknowledge(std::uint64_t bytes);
  static std::vector<std::uint8_t> credit_frame(std::uint64_t bytes);
  // Whether `owed` bytes of stored steps are worth a credit frame now. Like
  // TCP's window updates, credit goes back in pieces of a quarter of the
  // window, not step by step (a send on the server and a read on the client
  // per step were a visible share of small-step ingest, issue 16). Never a
  // deadlock: a client blocked on credit has more than `window - next step`
  // bytes outstanding; once they are stored, `owed` is that much, which is at
  // least the threshold, since no step of a declared field is larger than
  // `largest_step_bytes()`. In statistics mode (slices up to a window) and
  // when a step takes more than three quarters of the window: every step.
  bool credit_due(std::uint64_t owed) const;
  // The largest step frame this session may send: its largest declared
  // field at 8 bytes a value (the widest data type).
  std::uint64_t largest_step_bytes() const;
  std::uint64_t in_flight_bytes() const { return in_flight_bytes_; }
  static std::vector<std::uint8_t> end_frame();

  bool opened() const { return opened_; }
  bool ended() const { return ended_; }
  std::uint32_t sim_id() const { return sim_id_; }
  std::uint32_t attempt() const { return attempt_; }
  // "sim 3 attempt 1", or "no session yet".
  std::string describe() const;

 private:
  action fail(std::string reason) const;
  action on_hello(const wire::frame_header& h, std::string_view text);
  action on_field(const wire::frame_header& h, std::string_view text);
  action on_step(const wire::frame_header& h);

  session_settings settings_;
  bool hello_seen_ = false;
  bool opened_ = false;
  bool ended_ = false;
  std::string ticket_;
  std::uint32_t sim_id_ = 0;
  std::uint32_t attempt_ = 0;
  std::map<std::uint32_t, bool> declared_;  // field ids this client declared
  std::uint64_t in_flight_bytes_ = 0;       // step payload received, not yet acknowledged
};

}  // namespace melissa
