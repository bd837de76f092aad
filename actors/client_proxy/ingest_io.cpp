#include "actors/client_proxy/ingest_io.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace melissa {

// ---- budget -------------------------------------------------------------

bool ingest_budget::try_acquire(std::uint64_t n) {
  auto used = used_.load();
  for (;;) {
    if (limit_ > 0 && used > 0 && used + n > limit_) return false;
    if (used_.compare_exchange_weak(used, used + n)) break;
  }
  auto peak = peak_.load();
  while (used + n > peak && !peak_.compare_exchange_weak(peak, used + n)) {
  }
  return true;
}

void ingest_budget::release(std::uint64_t n) {
  used_ -= n;
  std::lock_guard<std::mutex> lock(wake_mutex_);
  if (wake_) wake_();
}

void ingest_budget::on_release(std::function<void()> f) {
  std::lock_guard<std::mutex> lock(wake_mutex_);
  wake_ = std::move(f);
}

// ---- reader threads -----------------------------------------------------

namespace {
constexpr std::uint64_t wake_key = ~std::uint64_t{0};
constexpr std::uint64_t listen_key = ~std::uint64_t{0} - 1;
constexpr int rounds_per_event = 32;  // reads on one connection before the others get a turn
}  // namespace

struct reader_thread {
  ingest_io* io = nullptr;
  int epfd = -1;
  int wakefd = -1;
  std::thread thread;
  std::mutex mutex;  // guards incoming, stop
  std::vector<std::shared_ptr<ingest_connection>> incoming;
  bool stop = false;
  std::atomic<bool> parked_any{false};
  // Reader thread only:
  std::unordered_map<int, std::shared_ptr<ingest_connection>> conns;
  std::vector<std::shared_ptr<ingest_connection>> parked;

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wakefd, &one, sizeof one);
  }

  void run() {
    std::vector<epoll_event> events(256);
    for (;;) {
      const int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < n; ++i) {
        const auto key = events[i].data.u64;
        if (key == wake_key) {
          std::uint64_t count;
          [[maybe_unused]] auto r = ::read(wakefd, &count, sizeof count);
          if (!on_wake()) return shutdown_all();
        } else if (key == listen_key) {
          io->accept_all();
        } else {
          auto it = conns.find(static_cast<int>(key));
          if (it == conns.end()) continue;
          auto c = it->second;  // keep it alive through finalize()
          on_event(c, events[i].events);
        }
      }
    }
    shutdown_all();
  }

  // Returns false when the thread must stop.
  bool on_wake() {
    std::vector<std::shared_ptr<ingest_connection>> fresh;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stop) return false;
      fresh.swap(incoming);
    }
    for (auto& c : fresh) register_connection(c);
    if (parked_any.load()) retry_parked();
    return true;
  }

  void register_connection(const std::shared_ptr<ingest_connection>& c) {
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      if (c->fd_ < 0) return;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<std::uint64_t>(c->fd_);
      if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd_, &ev) != 0) return;
      c->registered_events_ = EPOLLIN;
      c->registered_ = true;
      conns[c->fd_] = c;
      c->update_interest_locked();  // bytes queued before it was registered, a close()
    }
  }

  void on_event(const std::shared_ptr<ingest_connection>& c, std::uint32_t events) {
    if (events & EPOLLOUT) {
      std::lock_guard<std::mutex> lock(c->mutex_);
      c->flush_locked();
      c->update_interest_locked();
    }
    if (events & EPOLLIN) readable(c);
    // Shut down after close(), or reset by the peer.
    if ((events & (EPOLLHUP | EPOLLERR)) && c->fd_ >= 0) lost(c);
  }

  bool closing(const std::shared_ptr<ingest_connection>& c) {
    std::lock_guard<std::mutex> lock(c->mutex_);
    return c->closing_ || c->fd_ < 0;
  }

  // Reads what the socket has for this connection, then tells its listener
  // that this turn is over.
  void readable(const std::shared_ptr<ingest_connection>& c) {
    read_some(c);
    if (c->listener_) c->listener_->read_paused();
  }

  // Reads what the socket has for this connection, a bounded number of times.
  void read_some(const std::shared_ptr<ingest_connection>& c) {
    using st = ingest_connection::state;
    // A whole header already read (it came with the last payload) is handled
    // even past the bound: no socket event would come back for it.
    auto header_in = [&] { return c->state_ == st::header && c->head_have_ == wire::header_size; };
    for (int round = 0; round < rounds_per_event || header_in(); ++round) {
      if (closing(c)) return;
      switch (c->state_) {
        case st::parked: return;
        case st::header: {
          if (c->head_have_ < wire::header_size) {
            const auto n = ::recv(c->fd_, c->head_ + c->head_have_,
                                  wire::header_size - c->head_have_, 0);
            if (!io_ok(c, n)) return;
            c->head_have_ += static_cast<std::size_t>(n);
            if (c->head_have_ < wire::header_size) continue;
          }
          if (!on_header(c)) return;
          break;
        }
        case st::extension: {
          const auto want = wire::header_size + wire::slice_extension_size;
          const auto n = ::recv(c->fd_, c->head_ + c->head_have_, want - c->head_have_, 0);
          if (!io_ok(c, n)) return;
          c->head_have_ += static_cast<std::size_t>(n);
          if (c->head_have_ < want) continue;
          if (!on_extension(c)) return;
          break;
        }
        case st::payload: {
          // The rest of the payload, straight into its buffer, and the next
          // header behind it, in one call.
          const auto rest = c->payload_.size() - c->payload_have_;
          iovec iov[2];
          iov[0].iov_base = c->payload_.data() + c->payload_have_;
          iov[0].iov_len = rest;
          iov[1].iov_base = c->head_;
          iov[1].iov_len = wire::header_size;
          const auto n = ::readv(c->fd_, iov, 2);
          if (!io_ok(c, n)) return;
          const auto got = static_cast<std::size_t>(n);
          if (got < rest) {
            c->payload_have_ += got;
            continue;
          }
          c->payload_have_ = c->payload_.size();
          c->head_have_ = got - rest;
          if (!complete(c)) return;
          break;
        }
      }
    }
  }

  // false: stop reading this connection now (would block, closed, lost).
  bool io_ok(const std::shared_ptr<ingest_connection>& c, ssize_t n) {
    if (n > 0) return true;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
    lost(c);
    return false;
  }

  bool on_header(const std::shared_ptr<ingest_connection>& c) {
    auto decoded = wire::decode_header(c->head_, io->settings_.max_frame_bytes);
    if (!decoded.header)
      return reject(c, decoded.error,
                    wire::encode_text_frame(wire::frame_type::error, 0, 0, 0, decoded.error));
    std::string why;
    std::vector<std::uint8_t> frame;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      why = c->session_.admit_header(*decoded.header);
      // Refused from its header alone: nothing is allocated for its payload.
      if (!why.empty()) frame = c->session_.error_frame(why);
    }
    if (!why.empty()) return reject(c, why, frame);
    c->pending_ = *decoded.header;
    if (wire::extension_size(c->pending_.type) > 0) {
      c->state_ = ingest_connection::state::extension;
      return true;
    }
    return begin_payload(c);
  }

  bool on_extension(const std::shared_ptr<ingest_connection>& c) {
    auto why = wire::decode_extension(c->head_ + wire::header_size, c->pending_);
    std::vector<std::uint8_t> frame;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      if (why.empty()) why = c->session_.admit_extension(c->pending_);
      if (!why.empty()) frame = c->session_.error_frame(why);
    }
    if (!why.empty()) return reject(c, why, frame);
    return begin_payload(c);
  }

  bool is_data(const wire::frame_header& h) {
    return h.type == wire::frame_type::step || h.type == wire::frame_type::slice;
  }

  bool begin_payload(const std::shared_ptr<ingest_connection>& c) {
    c->head_have_ = 0;
    const auto bytes = c->pending_.payload_bytes();
    if (bytes == 0) {
      c->payload_.clear();
      return complete(c);
    }
    if (is_data(c->pending_)) {
      if (!io->budget_->try_acquire(bytes)) {
        park(c);
        return false;
      }
      c->budgeted_ = true;
    }
    // Control frames (at most 4 KiB, checked) are not pooled.
    c->payload_ = is_data(c->pending_) ? io->pool_->take(bytes) : payload_bytes(bytes);
    c->payload_have_ = 0;
    c->state_ = ingest_connection::state::payload;
    return true;
  }

  // The budget is spent: stop reading this connection (TCP holds its data
  // back) until payloads are released.
  void park(const std::shared_ptr<ingest_connection>& c) {
    c->state_ = ingest_connection::state::parked;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      c->want_in_ = false;
      c->update_interest_locked();
    }
    parked.push_back(c);
    parked_any = true;
    // A release between the failed acquire and parked_any = true woke no one.
    retry_parked();
  }

  void retry_parked() {
    std::vector<std::shared_ptr<ingest_connection>> still;
    std::vector<std::shared_ptr<ingest_connection>> resumed;
    for (auto& c : parked) {
      if (closing(c)) continue;
      const auto bytes = c->pending_.payload_bytes();
      if (!resumed.empty() || !io->budget_->try_acquire(bytes)) {
        still.push_back(c);  // first come, first served
        continue;
      }
      c->budgeted_ = true;
      c->payload_ = io->pool_->take(bytes);
      c->payload_have_ = 0;
      c->state_ = ingest_connection::state::payload;
      {
        std::lock_guard<std::mutex> lock(c->mutex_);
        c->want_in_ = true;
        c->update_interest_locked();
      }
      resumed.push_back(c);
    }
    parked.swap(still);
    parked_any = !parked.empty();
    for (auto& c : resumed) readable(c);
  }

  // A whole frame is in: the session rules decide what follows.
  bool complete(const std::shared_ptr<ingest_connection>& c) {
    c->state_ = ingest_connection::state::header;
    const auto& h = c->pending_;
    client_session::action act;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      act = c->session_.on_frame(h, reinterpret_cast<const std::uint8_t*>(c->payload_.data()),
                                 c->payload_.size());
    }
    if (!act.error.empty()) return reject(c, act.error, act.reply);
    if (!act.reply.empty()) c->send(act.reply);
    auto* l = c->listener_.get();
    if (act.check_ticket && l) l->hello();
    if (act.end_requested && l) l->end();
    if (act.forward_step) {
      std::function<void()> after;
      if (c->budgeted_)
        after = [budget = io->budget_, bytes = h.payload_bytes()] { budget->release(bytes); };
      c->budgeted_ = false;
      auto shared = io->pool_->share(std::move(c->payload_), std::move(after));
      payload_bytes().swap(c->payload_);
      if (l) l->step(h, std::move(shared));
    } else {
      drop_payload(c);
    }
    return true;
  }

  void drop_payload(const std::shared_ptr<ingest_connection>& c) {
    if (c->budgeted_) io->budget_->release(c->pending_.payload_bytes());
    c->budgeted_ = false;
    payload_bytes().swap(c->payload_);  // no capacity kept per idle connection
  }

  bool reject(const std::shared_ptr<ingest_connection>& c, const std::string& reason,
              const std::vector<std::uint8_t>& frame) {
    std::string who;
    bool opened;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      who = c->session_.describe();
      opened = c->session_.opened();
    }
    c->send(frame);
    drop_payload(c);
    if (c->listener_) c->listener_->rejected(reason, who, opened);
    c->close();
    return false;
  }

  void lost(const std::shared_ptr<ingest_connection>& c) {
    bool was_closing;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      was_closing = c->closing_;
    }
    if (!was_closing && c->listener_) c->listener_->lost();
    finalize(c);
  }

  void finalize(const std::shared_ptr<ingest_connection>& c) {
    int fd;
    {
      std::lock_guard<std::mutex> lock(c->mutex_);
      fd = c->fd_;
      if (fd < 0) return;
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
      ::close(fd);
      c->fd_ = -1;
      c->closing_ = true;
      c->registered_ = false;
    }
    drop_payload(c);
    c->listener_.reset();  // it may hold the proxy: no cycle
    conns.erase(fd);
    parked.erase(std::remove(parked.begin(), parked.end(), c), parked.end());
  }

  void shutdown_all() {
    std::vector<std::shared_ptr<ingest_connection>> all;
    for (auto& [fd, c] : conns) all.push_back(c);
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (auto& c : incoming) all.push_back(c);
      incoming.clear();
    }
    for (auto& c : all) {
      {
        std::lock_guard<std::mutex> lock(c->mutex_);
        c->closing_ = true;
      }
      finalize(c);
      std::lock_guard<std::mutex> lock(c->mutex_);
      if (c->fd_ >= 0) {  // never registered
        ::close(c->fd_);
        c->fd_ = -1;
      }
    }
    conns.clear();
    parked.clear();
  }
};

// ---- connection -----------------------------------------------------------

ingest_connection::~ingest_connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool ingest_connection::flush_locked() {
  while (outbox_sent_ < outbox_.size()) {
    const auto n = ::send(fd_, outbox_.data() + outbox_sent_, outbox_.size() - outbox_sent_,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      outbox_sent_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    outbox_.clear();  // broken: the reader sees it as lost
    outbox_sent_ = 0;
    return false;
  }
  outbox_.clear();
  outbox_sent_ = 0;
  if (closing_ && !shut_) {
    // Everything queued is out: FIN after it; the reader then sees the hang-up.
    ::shutdown(fd_, SHUT_RDWR);
    shut_ = true;
  }
  return true;
}

void ingest_connection::update_interest_locked() {
  if (!registered_ || fd_ < 0 || !reader_) return;
  std::uint32_t events = 0;
  if (want_in_ && !closing_) events |= EPOLLIN;
  if (outbox_sent_ < outbox_.size()) events |= EPOLLOUT;
  if (events == registered_events_) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = static_cast<std::uint64_t>(fd_);
  if (::epoll_ctl(reader_->epfd, EPOLL_CTL_MOD, fd_, &ev) == 0) registered_events_ = events;
}

void ingest_connection::send(const std::vector<std::uint8_t>& bytes) {
  if (bytes.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0 || shut_) return;
  outbox_.insert(outbox_.end(), bytes.begin(), bytes.end());
  flush_locked();
  update_interest_locked();
}

void ingest_connection::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0 || closing_) return;
  closing_ = true;
  flush_locked();
  update_interest_locked();
}

// ---- the pool -------------------------------------------------------------

ingest_io::ingest_io(settings s, accept_handler on_accept)
    : settings_(std::move(s)), on_accept_(std::move(on_accept)) {
  if (settings_.threads == 0) settings_.threads = 1;
  budget_ = std::make_shared<ingest_budget>(settings_.budget_bytes);
  pool_ = buffer_pool::make(settings_.idle_pool_bytes);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const auto service = std::to_string(settings_.port);
  const char* host = settings_.host.empty() ? nullptr : settings_.host.c_str();
  if (const int rc = ::getaddrinfo(host, service.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error("cannot resolve '" + settings_.host + "': " + ::gai_strerror(rc));
  std::string why = "no address";
  for (auto* a = found; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listener_ = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (listener_ < 0) throw std::runtime_error(why);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (unsigned i = 0; i < settings_.threads; ++i) {
    auto r = std::make_unique<reader_thread>();
    r->io = this;
    r->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->epfd < 0 || r->wakefd < 0) throw std::runtime_error(std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_key;
    ::epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev);
    if (i == 0) {
      ev.data.u64 = listen_key;
      ::epoll_ctl(r->epfd, EPOLL_CTL_ADD, listener_, &ev);
    }
    readers_.push_back(std::move(r));
  }
  budget_->on_release([this] {
    for (auto& r : readers_)
      if (r->parked_any.load()) r->wake();
  });
  for (auto& r : readers_)
    r->thread = std::thread([p = r.get()] {
      ::pthread_setname_np(::pthread_self(), "melissa.reader");  // for top and perf
      p->run();
    });
}

ingest_io::~ingest_io() { stop(); }

void ingest_io::accept_all() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = ::accept4(listener_, reinterpret_cast<sockaddr*>(&peer), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if ((errno != EMFILE && errno != ENFILE) || spare_fd_ < 0) return;  // EAGAIN: all taken
      ::close(spare_fd_);
      const int refused = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (refused >= 0) ::close(refused);
      spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      const auto n = ++refused_for_descriptors_;
      if (n == 1 || n % 100 == 0)
        spdlog::error("client port: out of file descriptors, closed {} connection{} at once "
                      "(raise the limit: ulimit -n)",
                      n, n == 1 ? "" : "s");
      if (refused < 0) return;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[NI_MAXHOST] = "?";
    char port[NI_MAXSERV] = "?";
    ::getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV);
    auto c = std::make_shared<ingest_connection>(fd, std::string(host) + ":" + port,
                                                 settings_.session);
    ++accepted_;
    on_accept_(std::move(c));
  }
}

void ingest_io::start(const std::shared_ptr<ingest_connection>& c) {
  if (stopped_.load() || readers_.empty()) {
    c->close();
    return;
  }
  static std::atomic<std::size_t> next{0};
  auto* r = readers_[next++ % readers_.size()].get();
  {
    std::lock_guard<std::mutex> lock(c->mutex_);
    c->reader_ = r;
  }
  {
    std::lock_guard<std::mutex> lock(r->mutex);
    r->incoming.push_back(c);
  }
  r->wake();
}

void ingest_io::stop() {
  if (stopped_.exchange(true)) return;
  budget_->on_release({});
  for (auto& r : readers_) {
    {
      std::lock_guard<std::mutex> lock(r->mutex);
      r->stop = true;
    }
    r->wake();
  }
  for (auto& r : readers_) {
    if (r->thread.joinable()) r->thread.join();
    ::close(r->epfd);
    ::close(r->wakefd);
  }
  readers_.clear();
  if (listener_ >= 0) ::close(listener_);
  listener_ = -1;
  if (spare_fd_ >= 0) ::close(spare_fd_);
  spare_fd_ = -1;
}

}  // namespace melissa
