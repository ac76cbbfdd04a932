// Comm.cpp - libdynrt_mpi: dynrt_comm_t over MPI (dynrt_mpi.h).
//
// Statuses. A status returned here is freed by whichever libdynrt the
// program uses: usually the copy inside a generated model library, not one
// linked into libdynrt_mpi (there is none: this library calls no dynrt_*
// function, so it can sit next to any number of libdynrt copies without
// duplicate symbols). runtime/Status.cpp allocates a status with
// `new dynrt_status_s{code, std::string}` and dynrt_status_free `delete`s
// it unless it is that copy's own static out-of-memory status. So a status
// made here with the same `new` of the same struct (its one definition is
// runtime/Status.h, included below) is freed correctly by any libdynrt copy
// built from the same sources with the same C++ standard library (global
// operator new/delete and std::string are the process's, shared by all
// copies). What must never be returned is a static status: another copy's
// dynrt_status_free would `delete` it. So when memory runs out, this file
// hands out a status allocated in advance (one per process, see
// spareStatus) and, if even that is gone, aborts with a message rather than
// return a status no one can free.
//
// Exceptions never leave the C functions (guard below): out of memory is
// RESOURCE_EXHAUSTED, anything else INTERNAL.
#include "runtime/mpi/dynrt_mpi.h"
// Only for the definition of struct dynrt_status_s; nothing that needs
// libdynrt's code (dynrt::makeStatus) is used.
#include "runtime/Status.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

//===--------------------------------------------------------------------===//
// Statuses
//===--------------------------------------------------------------------===//

// Allocated by the first dynrt_mpi_comm_create; handed out (once) when a
// status cannot be allocated at the time of the error.
std::atomic<dynrt_status_s *> spareStatus{nullptr};

void ensureSpareStatus() {
  if (spareStatus.load())
    return;
  auto *s = new (std::nothrow) dynrt_status_s{DYNRT_RESOURCE_EXHAUSTED, {}};
  if (!s)
    return;
  try {
    s->message = "out of memory while reporting an error (libdynrt_mpi)";
  } catch (...) {
  }
  dynrt_status_s *expected = nullptr;
  if (!spareStatus.compare_exchange_strong(expected, s))
    delete s;
}

// Never throws and never returns NULL or a static object (see the top).
dynrt_status_t makeStatus(dynrt_status_code_t code, const char *message) noexcept {
  if (code == DYNRT_OK)
    code = DYNRT_INTERNAL;
  auto *s = new (std::nothrow) dynrt_status_s{code, {}};
  if (s) {
    try {
      s->message = message;
    } catch (...) {
      // Keep the code; an empty message needs no allocation.
    }
    return s;
  }
  if (dynrt_status_s *spare = spareStatus.exchange(nullptr))
    return spare;
  std::fprintf(stderr, "libdynrt_mpi: out of memory while reporting an error: %s\n",
               message);
  std::abort();
}

dynrt_status_t makeStatus(dynrt_status_code_t code, const std::string &message) noexcept {
  return makeStatus(code, message.c_str());
}

template <typename Body> dynrt_status_t guard(Body &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return makeStatus(DYNRT_RESOURCE_EXHAUSTED, "out of memory");
  } catch (const std::exception &e) {
    try {
      return makeStatus(DYNRT_INTERNAL, std::string("unexpected error: ") + e.what());
    } catch (...) {
      return makeStatus(DYNRT_INTERNAL, "unexpected error");
    }
  } catch (...) {
    return makeStatus(DYNRT_INTERNAL, "unexpected error");
  }
}

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING + 1] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  text[std::min(std::max(len, 0), MPI_MAX_ERROR_STRING)] = '\0';
  return std::string(text) + " (MPI error " + std::to_string(code) + ")";
}

//===--------------------------------------------------------------------===//
// Large counts
//===--------------------------------------------------------------------===//

// Counts and displacements up to intLimit travel as MPI_BYTE; beyond it as
// derived datatypes of `chunk`-byte blocks. The tests lower both
// (dynrt_mpi_testing_set_limits) to run the derived-type path on small
// buffers.
std::atomic<uint64_t> intLimit{static_cast<uint64_t>(INT_MAX)};
std::atomic<uint64_t> chunkBytes{uint64_t(1) << 30};

// The datatypes of one large exchange; freed with it (MPI_Type_free on a
// type a pending operation uses is allowed: the operation keeps it).
struct Types {
  std::vector<MPI_Datatype> owned;
  ~Types() {
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized)
      for (MPI_Datatype &t : owned)
        MPI_Type_free(&t);
  }
};

// A committed datatype for `bytes` bytes at byte offset `offset` from the
// buffer (extent: offset + bytes): q blocks of `chunk` bytes and a tail.
// Errors are MPI codes; *error names a size that does not fit.
int makeBlockType(uint64_t offset, uint64_t bytes, Types &types, MPI_Datatype *out,
                  std::string *error) {
  const uint64_t chunk = chunkBytes.load();
  const uint64_t q = bytes / chunk, r = bytes % chunk;
  if (q > static_cast<uint64_t>(INT_MAX) || offset > static_cast<uint64_t>(LLONG_MAX) ||
      bytes > static_cast<uint64_t>(LLONG_MAX) - offset) {
    *error = std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
             " do not fit MPI's counts and addresses";
    return MPI_ERR_COUNT;
  }
  MPI_Datatype chunkType;
  int rc = MPI_Type_contiguous(static_cast<int>(chunk), MPI_BYTE, &chunkType);
  if (rc != MPI_SUCCESS)
    return rc;
  types.owned.push_back(chunkType);
  int lengths[2] = {static_cast<int>(q), static_cast<int>(r)};
  MPI_Aint displs[2] = {static_cast<MPI_Aint>(offset),
                        static_cast<MPI_Aint>(offset + q * chunk)};
  MPI_Datatype parts[2] = {chunkType, MPI_BYTE};
  MPI_Datatype structType;
  rc = MPI_Type_create_struct(2, lengths, displs, parts, &structType);
  if (rc != MPI_SUCCESS)
    return rc;
  types.owned.push_back(structType);
  // Exactly [0, offset + bytes), whatever padding the struct rule adds.
  MPI_Datatype resized;
  rc = MPI_Type_create_resized(structType, 0, static_cast<MPI_Aint>(offset + bytes),
                               &resized);
  if (rc != MPI_SUCCESS)
    return rc;
  types.owned.push_back(resized);
  rc = MPI_Type_commit(&types.owned.back());
  if (rc != MPI_SUCCESS)
    return rc;
  *out = types.owned.back();
  return MPI_SUCCESS;
}

//===--------------------------------------------------------------------===//
// The communicator
//===--------------------------------------------------------------------===//

// Everything a pending collective may still touch: the staging buffers, the
// count and datatype arrays (MPI may read them until completion) and the
// request. Reused from call to call; abandoned (leaked) on timeout.
struct Exchange {
  MPI_Request request = MPI_REQUEST_NULL;
  char *send = nullptr;
  char *recv = nullptr;
  size_t sendCapacity = 0, recvCapacity = 0;
  std::vector<int> sendCounts, sendDispls, recvCounts, recvDispls;
  std::vector<MPI_Datatype> sendTypes, recvTypes;
  std::unique_ptr<Types> types;

  ~Exchange() {
    std::free(send);
    std::free(recv);
  }
  // Grows a staging buffer; false when out of memory.
  static bool reserve(char *&buffer, size_t &capacity, uint64_t bytes) {
    if (bytes <= capacity)
      return true;
    if (bytes > SIZE_MAX)
      return false;
    size_t want = std::max<size_t>(static_cast<size_t>(bytes), capacity + capacity / 2);
    void *p = std::malloc(want);
    if (!p) {
      want = static_cast<size_t>(bytes);
      p = std::malloc(want);
      if (!p)
        return false;
    }
    std::free(buffer);
    buffer = static_cast<char *>(p);
    capacity = want;
    return true;
  }
};

constexpr uint64_t kMagic = 0x64796e72746d7069ull; // "dynrtmpi"

struct MpiComm {
  uint64_t magic = kMagic;
  dynrt_comm_t table{};
  MPI_Comm comm = MPI_COMM_NULL;
  int32_t timeoutMs = DYNRT_MPI_DEFAULT_TIMEOUT_MS;
  std::mutex mutex;
  // Set by the first failure; later calls fail with it.
  bool broken = false;
  std::string failure;
  // NULL after a timeout (the abandoned exchange is leaked).
  std::unique_ptr<Exchange> exchange = std::make_unique<Exchange>();
  std::atomic<uint64_t> calls{0}, bytesSent{0}, nanos{0};
};

MpiComm *implOf(const dynrt_comm_t *comm) {
  if (!comm || !comm->impl)
    return nullptr;
  auto *impl = static_cast<MpiComm *>(comm->impl);
  return impl->magic == kMagic && &impl->table == comm ? impl : nullptr;
}

// Adds the call's time to the counters when it ends.
struct CallTimer {
  MpiComm &c;
  Clock::time_point start = Clock::now();
  explicit CallTimer(MpiComm &c) : c(c) { c.calls.fetch_add(1); }
  ~CallTimer() {
    c.nanos.fetch_add(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
  }
};

// Marks the communicator broken with `message` and returns it as a status.
dynrt_status_t fail(MpiComm &c, const std::string &message) {
  c.broken = true;
  c.failure = message;
  return makeStatus(DYNRT_UNAVAILABLE, message);
}

dynrt_status_t failMpi(MpiComm &c, const char *what, int rc) {
  return fail(c, std::string("expert exchange: ") + what + " failed: " + mpiErrorText(rc));
}

// Polls the exchange's request until it completes or the deadline passes:
// a short burst of yields (the common case: every rank is there), then
// sleeps of growing length, at most 200 us (the added latency when a rank
// is late).
dynrt_status_t wait(MpiComm &c, Clock::time_point start) {
  Exchange &x = *c.exchange;
  const auto deadline = start + std::chrono::milliseconds(c.timeoutMs);
  auto sleep = std::chrono::microseconds(10);
  for (int polls = 0;; ++polls) {
    int done = 0;
    int rc = MPI_Test(&x.request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      // The request's state is unknown: abandon it like a timed-out one.
      c.exchange.release();
      return failMpi(c, "MPI_Test", rc);
    }
    if (done)
      return nullptr;
    if (Clock::now() >= deadline) {
      // MPI cannot cancel a collective, and MPI_Request_free on an active
      // collective request is not portable; waiting again could block
      // forever. Leak the request with every buffer it may still write to
      // or read from: a late rank then writes into memory nobody reuses.
      c.exchange.release();
      return fail(c, "expert exchange: ranks did not all take part within " +
                         std::to_string(c.timeoutMs) + " ms (a rank died or stopped)");
    }
    if (polls < 200) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(sleep);
      sleep = std::min(sleep * 2, std::chrono::microseconds(200));
    }
  }
}

dynrt_status_t checkUsable(MpiComm *c) {
  if (!c)
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "comm is NULL or not made by dynrt_mpi_comm_create");
  if (c->broken)
    return makeStatus(DYNRT_FAILED_PRECONDITION,
                      "the communicator failed earlier: " + c->failure);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return makeStatus(DYNRT_FAILED_PRECONDITION,
                      std::string("expert exchange: MPI is already finalized"));
  return nullptr;
}

dynrt_status_t alltoallv(dynrt_comm_t *comm, const void *send, const uint64_t *sendBytes,
                         void *recv, const uint64_t *recvBytes) {
  MpiComm *c = implOf(comm);
  if (!c)
    return checkUsable(c);
  std::lock_guard<std::mutex> lock(c->mutex);
  if (dynrt_status_t st = checkUsable(c))
    return st;
  CallTimer timer(*c);
  if (!sendBytes || !recvBytes)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "alltoallv: send_bytes or recv_bytes is NULL");
  const int n = comm->size;
  uint64_t sendTotal = 0, recvTotal = 0, sentOut = 0;
  for (int j = 0; j < n; ++j) {
    if (sendBytes[j] > UINT64_MAX - sendTotal || recvBytes[j] > UINT64_MAX - recvTotal)
      return makeStatus(DYNRT_INVALID_ARGUMENT, "alltoallv: the byte counts overflow 64 bits");
    sendTotal += sendBytes[j];
    recvTotal += recvBytes[j];
    if (j != comm->rank)
      sentOut += sendBytes[j];
  }
  if ((sendTotal && !send) || (recvTotal && !recv))
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "alltoallv: send or recv is NULL with " + std::to_string(sendTotal) +
                          " bytes to send and " + std::to_string(recvTotal) + " to receive");
  if (n == 1) {
    if (sendBytes[0] != recvBytes[0])
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "alltoallv: a single rank sends " + std::to_string(sendBytes[0]) +
                            " bytes to itself but expects " + std::to_string(recvBytes[0]));
    if (sendTotal)
      std::memmove(recv, send, sendTotal);
    return nullptr;
  }

  Exchange &x = *c->exchange;
  if (!Exchange::reserve(x.send, x.sendCapacity, sendTotal) ||
      !Exchange::reserve(x.recv, x.recvCapacity, recvTotal))
    return makeStatus(DYNRT_RESOURCE_EXHAUSTED,
                      "alltoallv: cannot allocate " + std::to_string(sendTotal) + " + " +
                          std::to_string(recvTotal) + " bytes of staging buffers");
  if (sendTotal)
    std::memcpy(x.send, send, sendTotal);

  // MPI_BYTE when every count and displacement fits (the last displacement
  // is at most the total minus the last count).
  const uint64_t limit = intLimit.load();
  bool small = true;
  for (int j = 0; j < n && small; ++j)
    small = sendBytes[j] <= limit && recvBytes[j] <= limit;
  small = small && sendTotal - sendBytes[n - 1] <= limit && recvTotal - recvBytes[n - 1] <= limit;
  int rc;
  x.types.reset();
  if (small) {
    x.sendCounts.assign(n, 0);
    x.sendDispls.assign(n, 0);
    x.recvCounts.assign(n, 0);
    x.recvDispls.assign(n, 0);
    uint64_t so = 0, ro = 0;
    for (int j = 0; j < n; ++j) {
      x.sendCounts[j] = static_cast<int>(sendBytes[j]);
      x.sendDispls[j] = static_cast<int>(so);
      x.recvCounts[j] = static_cast<int>(recvBytes[j]);
      x.recvDispls[j] = static_cast<int>(ro);
      so += sendBytes[j];
      ro += recvBytes[j];
    }
    rc = MPI_Ialltoallv(x.send, x.sendCounts.data(), x.sendDispls.data(), MPI_BYTE, x.recv,
                        x.recvCounts.data(), x.recvDispls.data(), MPI_BYTE, c->comm,
                        &x.request);
    if (rc != MPI_SUCCESS)
      return failMpi(*c, "MPI_Ialltoallv", rc);
  } else {
    // One datatype per peer, each addressing its block by a 64-bit
    // displacement (MPI_Ialltoallw's own displacements are ints: all 0).
    x.types = std::make_unique<Types>();
    x.sendCounts.assign(n, 1);
    x.recvCounts.assign(n, 1);
    x.sendDispls.assign(n, 0);
    x.recvDispls.assign(n, 0);
    x.sendTypes.assign(n, MPI_BYTE);
    x.recvTypes.assign(n, MPI_BYTE);
    uint64_t so = 0, ro = 0;
    for (int j = 0; j < n; ++j) {
      std::string error;
      rc = MPI_SUCCESS;
      if (sendBytes[j] == 0)
        x.sendCounts[j] = 0;
      else
        rc = makeBlockType(so, sendBytes[j], *x.types, &x.sendTypes[j], &error);
      if (rc == MPI_SUCCESS) {
        if (recvBytes[j] == 0)
          x.recvCounts[j] = 0;
        else
          rc = makeBlockType(ro, recvBytes[j], *x.types, &x.recvTypes[j], &error);
      }
      if (!error.empty())
        return makeStatus(DYNRT_INVALID_ARGUMENT, "alltoallv: " + error);
      if (rc != MPI_SUCCESS)
        return makeStatus(DYNRT_UNAVAILABLE,
                          "alltoallv: cannot make an MPI datatype for " +
                              std::to_string(std::max(sendBytes[j], recvBytes[j])) +
                              " bytes: " + mpiErrorText(rc));
      so += sendBytes[j];
      ro += recvBytes[j];
    }
    rc = MPI_Ialltoallw(x.send, x.sendCounts.data(), x.sendDispls.data(), x.sendTypes.data(),
                        x.recv, x.recvCounts.data(), x.recvDispls.data(), x.recvTypes.data(),
                        c->comm, &x.request);
    if (rc != MPI_SUCCESS)
      return failMpi(*c, "MPI_Ialltoallw", rc);
  }
  if (dynrt_status_t st = wait(*c, timer.start))
    return st;
  if (recvTotal)
    std::memcpy(recv, x.recv, recvTotal);
  c->bytesSent.fetch_add(sentOut);
  return nullptr;
}

dynrt_status_t allgather(dynrt_comm_t *comm, const void *send, uint64_t bytes, void *recv) {
  MpiComm *c = implOf(comm);
  if (!c)
    return checkUsable(c);
  std::lock_guard<std::mutex> lock(c->mutex);
  if (dynrt_status_t st = checkUsable(c))
    return st;
  CallTimer timer(*c);
  const uint64_t n = static_cast<uint64_t>(comm->size);
  if (bytes > UINT64_MAX / n)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "allgather: " + std::to_string(n) + " x " +
                                                  std::to_string(bytes) +
                                                  " bytes overflow 64 bits");
  const uint64_t total = n * bytes;
  if (bytes && (!send || !recv))
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "allgather: send or recv is NULL with " + std::to_string(bytes) + " bytes");
  if (n == 1) {
    if (bytes)
      std::memmove(recv, send, bytes);
    return nullptr;
  }
  Exchange &x = *c->exchange;
  if (!Exchange::reserve(x.send, x.sendCapacity, bytes) ||
      !Exchange::reserve(x.recv, x.recvCapacity, total))
    return makeStatus(DYNRT_RESOURCE_EXHAUSTED,
                      "allgather: cannot allocate " + std::to_string(bytes) + " + " +
                          std::to_string(total) + " bytes of staging buffers");
  if (bytes)
    std::memcpy(x.send, send, bytes);
  x.types.reset();
  int rc;
  if (bytes <= intLimit.load()) {
    rc = MPI_Iallgather(x.send, static_cast<int>(bytes), MPI_BYTE, x.recv,
                        static_cast<int>(bytes), MPI_BYTE, c->comm, &x.request);
  } else {
    x.types = std::make_unique<Types>();
    MPI_Datatype block;
    std::string error;
    rc = makeBlockType(0, bytes, *x.types, &block, &error);
    if (!error.empty())
      return makeStatus(DYNRT_INVALID_ARGUMENT, "allgather: " + error);
    if (rc != MPI_SUCCESS)
      return makeStatus(DYNRT_UNAVAILABLE, "allgather: cannot make an MPI datatype for " +
                                               std::to_string(bytes) +
                                               " bytes: " + mpiErrorText(rc));
    rc = MPI_Iallgather(x.send, 1, block, x.recv, 1, block, c->comm, &x.request);
  }
  if (rc != MPI_SUCCESS)
    return failMpi(*c, "MPI_Iallgather", rc);
  if (dynrt_status_t st = wait(*c, timer.start))
    return st;
  if (total)
    std::memcpy(recv, x.recv, total);
  c->bytesSent.fetch_add(bytes * (n - 1));
  return nullptr;
}

} // namespace

extern "C" {

dynrt_status_t dynrt_mpi_comm_create(MPI_Comm comm, int32_t timeout_ms,
                                     dynrt_comm_t **out_comm) {
  if (out_comm)
    *out_comm = nullptr;
  return guard([&]() -> dynrt_status_t {
    if (!out_comm)
      return makeStatus(DYNRT_INVALID_ARGUMENT, "out_comm is NULL");
    if (timeout_ms < 0)
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "timeout_ms is " + std::to_string(timeout_ms) +
                            "; it must be >= 0 (0: the default, " +
                            std::to_string(DYNRT_MPI_DEFAULT_TIMEOUT_MS) + " ms)");
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized)
      return makeStatus(DYNRT_FAILED_PRECONDITION,
                        "MPI is not initialized (call MPI_Init before dynrt_mpi_comm_create)");
    if (finalized)
      return makeStatus(DYNRT_FAILED_PRECONDITION, "MPI is already finalized");
    if (comm == MPI_COMM_NULL)
      return makeStatus(DYNRT_INVALID_ARGUMENT, "comm is MPI_COMM_NULL");
    ensureSpareStatus();
    auto impl = std::make_unique<MpiComm>();
    impl->timeoutMs = timeout_ms ? timeout_ms : DYNRT_MPI_DEFAULT_TIMEOUT_MS;
    int rc = MPI_Comm_dup(comm, &impl->comm);
    if (rc != MPI_SUCCESS)
      return makeStatus(DYNRT_UNAVAILABLE, "MPI_Comm_dup failed: " + mpiErrorText(rc));
    int rank = 0, size = 0;
    rc = MPI_Comm_set_errhandler(impl->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
      rc = MPI_Comm_rank(impl->comm, &rank);
    if (rc == MPI_SUCCESS)
      rc = MPI_Comm_size(impl->comm, &size);
    if (rc != MPI_SUCCESS) {
      MPI_Comm_free(&impl->comm);
      return makeStatus(DYNRT_UNAVAILABLE,
                        "cannot set up the duplicated communicator: " + mpiErrorText(rc));
    }
    impl->table.rank = rank;
    impl->table.size = size;
    impl->table.alltoallv = alltoallv;
    impl->table.allgather = allgather;
    impl->table.impl = impl.get();
    *out_comm = &impl.release()->table;
    return nullptr;
  });
}

void dynrt_mpi_comm_release(dynrt_comm_t *comm) {
  MpiComm *c = implOf(comm);
  if (!c)
    return;
  int finalized = 1;
  MPI_Finalized(&finalized);
  // MPI_Comm_free is local in Open MPI and MPICH, but a failed
  // communicator may have an abandoned request on it: leave it alone.
  if (!finalized && !c->broken && c->comm != MPI_COMM_NULL)
    MPI_Comm_free(&c->comm);
  // The exchange (staging buffers, datatypes) goes with it: no request is
  // pending outside a call, and a timed-out one took its exchange along.
  c->magic = 0;
  delete c;
}

void dynrt_mpi_comm_stats(const dynrt_comm_t *comm, uint64_t *calls, uint64_t *bytes_sent,
                          double *seconds) {
  MpiComm *c = implOf(comm);
  if (calls)
    *calls = c ? c->calls.load() : 0;
  if (bytes_sent)
    *bytes_sent = c ? c->bytesSent.load() : 0;
  if (seconds)
    *seconds = c ? static_cast<double>(c->nanos.load()) * 1e-9 : 0.0;
}

// For the tests only (not in dynrt_mpi.h): counts above int_limit take the
// derived-datatype path, in blocks of chunk bytes. 0 restores a default.
void dynrt_mpi_testing_set_limits(uint64_t int_limit, uint64_t chunk) {
  intLimit.store(int_limit ? std::min<uint64_t>(int_limit, INT_MAX) : INT_MAX);
  chunkBytes.store(chunk ? std::min<uint64_t>(chunk, INT_MAX) : uint64_t(1) << 30);
}

} // extern "C"
