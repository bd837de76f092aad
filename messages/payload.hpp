// The bytes of a step's payload, as the server holds them from the socket
// read to the sink. A std::vector with its own allocator, for two costs the
// ingest profile showed (issue 16, docs/architecture.md "Ingest threads and
// memory"):
//  - no zero fill: `payload_bytes(n)` leaves the bytes uninitialised, since
//    the socket read (or the slice assembly) writes every one of them next;
//  - buffers of 2 MiB and more are mapped on their own, 2 MiB-aligned, and
//    their whole 2 MiB pieces advised as transparent huge pages, so that
//    their first touch costs one page fault per 2 MiB instead of one per
//    4 KiB (on a VM a fault costs microseconds: fresh 4 MB buffers took 6 %
//    of the server's time with 16 senders). The tail past the last whole
//    piece stays in 4 KiB pages, so a buffer never holds more than its size
//    rounded up to 4 KiB (the budget stays true). Where the kernel gives no
//    huge pages (THP "never"), all are ordinary pages, as before.
// Use `payload_bytes(n, 0)` where zeros are wanted.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

namespace melissa {

template <class T>
struct payload_allocator {
  using value_type = T;
  static constexpr std::size_t huge_page = std::size_t{2} << 20;

  payload_allocator() noexcept = default;
  template <class U>
  payload_allocator(const payload_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page) return static_cast<T*>(::operator new(bytes));
    // Map one huge page more than needed, keep the aligned part.
    const std::size_t length = mapped_length(bytes);
    void* raw = ::mmap(nullptr, length + huge_page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const auto aligned = (start + huge_page - 1) & ~(huge_page - 1);
    if (aligned > start) ::munmap(raw, aligned - start);
    const auto end = start + length + huge_page;
    if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
    // A hint (it may fail); whole huge pages only, see above.
    ::madvise(reinterpret_cast<void*>(aligned), bytes & ~(huge_page - 1), MADV_HUGEPAGE);
    return reinterpret_cast<T*>(aligned);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page) {
      ::operator delete(p);
      return;
    }
    ::munmap(p, mapped_length(bytes));
  }

  // Value-initialisation (what resize(n) and vector(n) do) leaves the bytes
  // as they are; any other construction is the usual one.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

  // The bytes rounded up to whole pages (4 KiB on x86-64).
  static std::size_t mapped_length(std::size_t bytes) {
    static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page;
  }
};

template <class T, class U>
bool operator==(const payload_allocator<T>&, const payload_allocator<U>&) noexcept {
  return true;
}
template <class T, class U>
bool operator!=(const payload_allocator<T>&, const payload_allocator<U>&) noexcept {
  return false;
}

using payload_bytes = std::vector<char, payload_allocator<char>>;

}  // namespace melissa
