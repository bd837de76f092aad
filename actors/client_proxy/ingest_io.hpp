// The server's client sockets, read by a small pool of reader threads (epoll)
// instead of CAF's single multiplexer thread. Plain C++ (no CAF): each reader
// thread parses frames with client_session's rules, header checked before its
// payload is read, and hands whole steps to a listener; the client_proxy
// actor behind that listener talks to the aggregator and sends credit back
// through ingest_connection::send. Unit-tested over real sockets without CAF
// (tests/client_proxy/test_ingest_io.cpp).
//
// Reads per frame: the payload and the next frame's 40-byte header arrive in
// one readv (the payload goes straight into a pooled buffer, no copy), so a
// stream of steps costs about one system call per step.
//
// Memory: every step payload held anywhere in the server (read, queued, in a
// sink) is counted against one server-wide budget; a connection whose next
// payload does not fit stops being read (its header is kept) until payloads
// are released, so TCP holds the rest back. The server then holds at most the
// budget (or one frame, when nothing else is held) plus the idle buffer pool,
// however many clients are connected.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/client_proxy/buffer_pool.hpp"
#include "actors/client_proxy/client_session.hpp"
#include "messages/wire.hpp"

namespace melissa {

// Bytes of step payloads held, server-wide. 0: unlimited.
class ingest_budget {
 public:
  explicit ingest_budget(std::uint64_t limit) : limit_(limit) {}
  // Takes n bytes if they fit, or if nothing is held (one frame larger than
  // the whole budget still goes through, alone).
  bool try_acquire(std::uint64_t n);
  void release(std::uint64_t n);
  std::uint64_t used() const { return used_.load(); }
  std::uint64_t peak() const { return peak_.load(); }
  std::uint64_t limit() const { return limit_; }
  // Called after each release (from whichever thread released).
  void on_release(std::function<void()> f);

 private:
  std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> peak_{0};
  std::mutex wake_mutex_;
  std::function<void()> wake_;
};

class ingest_io;
struct reader_thread;

// Told what happens on one connection, on its reader thread, in order.
class connection_listener {
 public:
  virtual ~connection_listener() = default;
  virtual void hello() = 0;  // a valid hello: ask whether it may open, then admit()
  // A step (or slice) that passed every check; `payload` is released (and its
  // budget returned) when its last holder drops it.
  virtual void step(const wire::frame_header& h, std::shared_ptr<const payload_bytes> payload) = 0;
  virtual void end() = 0;  // the client sent `end`
  // A frame broke the protocol: the error frame is sent and the connection
  // closing. `who` is the session's description at that moment.
  virtual void rejected(const std::string& reason, const std::string& who, bool was_opened) = 0;
  virtual void lost() = 0;  // the peer closed or the socket failed (not after close())
  // The reader has read what the socket held for now (or its turn ended): a
  // listener that gathers the steps above hands them on here, many in one
  // message instead of one each.
  virtual void read_paused() {}
};

class ingest_connection {
 public:
  ingest_connection(int fd, std::string peer, session_settings s)
      : fd_(fd), peer_(std::move(peer)), session_(std::move(s)) {}
  ~ingest_connection();
  ingest_connection(const ingest_connection&) = delete;
  ingest_connection& operator=(const ingest_connection&) = delete;

  const std::string& peer() const { return peer_; }
  // Set before the connection is started (ingest_io::start).
  void set_listener(std::unique_ptr<connection_listener> l) { listener_ = std::move(l); }

  // Thread-safe: sends bytes, queueing what the socket does not take now.
  void send(const std::vector<std::uint8_t>& bytes);
  // Thread-safe: closes once the queued bytes are sent; no more events follow.
  void close();
  // Thread-safe access to the protocol state (the reader checks frames under
  // the same lock).
  template <class F>
  auto with_session(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    return f(session_);
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closing_ || fd_ < 0;
  }

 private:
  friend class ingest_io;
  friend struct reader_thread;
  enum class state { header, extension, payload, parked };

  void update_interest_locked();  // epoll flags from want_in_ / outbox
  bool flush_locked();            // false on a broken socket

  int fd_;
  std::string peer_;
  mutable std::mutex mutex_;
  client_session session_;
  std::vector<std::uint8_t> outbox_;  // bytes the socket did not take yet
  std::size_t outbox_sent_ = 0;
  bool closing_ = false;              // close() called: stop reading, shut down once flushed
  bool want_in_ = true;
  bool shut_ = false;                 // shutdown() done
  bool registered_ = false;           // in its reader's epoll set
  std::uint32_t registered_events_ = 0;
  reader_thread* reader_ = nullptr;
  std::unique_ptr<connection_listener> listener_;

  // Reader-thread state.
  state state_ = state::header;
  std::uint8_t head_[wire::header_size + wire::slice_extension_size] = {};
  std::size_t head_have_ = 0;
  wire::frame_header pending_;
  payload_bytes payload_;
  std::size_t payload_have_ = 0;
  bool budgeted_ = false;  // payload_ counts against the budget
};

class ingest_io {
 public:
  struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned threads = 2;                   // reader threads, >= 1
    std::uint64_t budget_bytes = 1ull << 30;  // step payloads held server-wide; 0: unlimited
    std::uint64_t max_frame_bytes = wire::default_max_frame_bytes;
    std::uint64_t idle_pool_bytes = 64ull << 20;  // recycled payload buffers kept
    session_settings session;
  };
  // Called on a reader thread for each accepted connection, before it is
  // read: set its listener, then call start(conn) (from any thread).
  using accept_handler = std::function<void(std::shared_ptr<ingest_connection>)>;

  // Binds and starts the reader threads; throws std::runtime_error (with the
  // reason) if it cannot listen.
  ingest_io(settings s, accept_handler on_accept);
  ~ingest_io();
  ingest_io(const ingest_io&) = delete;
  ingest_io& operator=(const ingest_io&) = delete;

  std::uint16_t port() const { return port_; }
  void start(const std::shared_ptr<ingest_connection>& c);
  // Closes every socket and joins the threads; no listener call follows.
  void stop();
  const ingest_budget& budget() const { return *budget_; }
  buffer_pool::figures buffers() const { return pool_->counts(); }
  std::uint64_t accepted() const { return accepted_.load(); }
  // Connections closed at once because the process was out of descriptors.
  std::uint64_t refused_for_descriptors() const { return refused_for_descriptors_.load(); }

 private:
  friend struct reader_thread;
  void accept_all();

  settings settings_;
  accept_handler on_accept_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::shared_ptr<ingest_budget> budget_;
  std::shared_ptr<buffer_pool> pool_;
  std::vector<std::unique_ptr<reader_thread>> readers_;
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_for_descriptors_{0};
  // One descriptor held in reserve: out of descriptors (EMFILE, ENFILE), a
  // pending connection keeps the listening socket readable and thread 0
  // would spin on it; closing the spare lets it accept that one and close it.
  int spare_fd_ = -1;
  std::atomic<bool> stopped_{false};
};

}  // namespace melissa
