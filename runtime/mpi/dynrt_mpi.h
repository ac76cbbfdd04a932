/* dynrt_mpi.h - libdynrt_mpi: the MPI implementation of dynrt_comm_t, the
 * communicator of expert-parallel models (dynrt.h, "Communicators").
 *
 * libdynrt itself never links MPI; a program that runs an expert-parallel
 * model links libdynrt_mpi.a and MPI, makes a communicator here and passes
 * it in dynrt_model_options_t.comm:
 *
 *   MPI_Init(&argc, &argv);
 *   dynrt_comm_t *comm = NULL;
 *   dynrt_status_t st = dynrt_mpi_comm_create(MPI_COMM_WORLD, 0, &comm);
 *   ... options.comm = comm; create the model, run it, destroy it ...
 *   dynrt_mpi_comm_release(comm);
 *   MPI_Finalize();
 *
 * Linking: libdynrt_mpi defines only the dynrt_mpi_* functions and calls no
 * dynrt_* function, so it links next to any copy of libdynrt (a generated
 * model library, static or shared, carries its own) without duplicate
 * symbols. Its statuses are ordinary dynrt statuses: free them with
 * dynrt_status_free of any libdynrt built from the same dynrt.h with the
 * same C++ standard library (Comm.cpp explains why that is safe).
 *
 * Conventions are dynrt.h's: NULL status is success, any other status is
 * owned by the caller; no C++ exception leaves a function.
 *
 * C++: compile with OMPI_SKIP_MPICXX=1 (Open MPI) or MPICH_SKIP_MPICXX=1
 * (MPICH), as the CMake target dynrt_mpi does for its users, unless the
 * program links MPI's deprecated C++ bindings: mpi.h pulls them in otherwise.
 *
 * MPI threading: the communicator calls MPI from the thread that calls its
 * functions (the thread that runs the model). If that is not the thread that
 * called MPI_Init, initialize MPI with at least MPI_THREAD_SERIALIZED; if
 * other threads use MPI at the same time, with MPI_THREAD_MULTIPLE. */
#ifndef DYNRT_MPI_H
#define DYNRT_MPI_H

#include <mpi.h>

#include <stdint.h>

/* In the source tree dynrt.h is runtime/dynrt.h (include root: the project
 * root); installed, and next to a generated model header, it is plain
 * dynrt.h in the same directory as this header. */
#if defined(__has_include)
#if __has_include("runtime/dynrt.h")
#include "runtime/dynrt.h"
#else
#include "dynrt.h"
#endif
#else
#include "runtime/dynrt.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The timeout used when dynrt_mpi_comm_create is given 0. */
#define DYNRT_MPI_DEFAULT_TIMEOUT_MS 60000

/* Makes a communicator of the ranks of `comm`. Collective: every rank of
 * `comm` calls it, in the same order as its other collectives on `comm`.
 *
 * `comm` is duplicated (MPI_Comm_dup), so the model's traffic never mixes
 * with the caller's; the duplicate reports errors as codes
 * (MPI_ERRORS_RETURN). The result's rank and size are this process's rank
 * in `comm` and the size of `comm`.
 *
 * timeout_ms: how long one collective (alltoallv, allgather) waits for the
 * other ranks before it fails; 0 means DYNRT_MPI_DEFAULT_TIMEOUT_MS.
 *
 * Behaviour of the collectives (beyond dynrt.h's contract):
 *  - Byte counts are 64-bit; counts or displacements beyond MPI's int are
 *    sent through derived datatypes, never truncated.
 *  - Data travel through buffers the communicator owns (one copy in, one
 *    copy out), so the caller's buffers are never touched once a call has
 *    returned, also after a failure.
 *  - UNAVAILABLE "expert exchange: ranks did not all take part within N ms
 *    (a rank died or stopped)" when the collective does not complete in
 *    time; UNAVAILABLE with MPI's error text when MPI reports an error. After
 *    either the communicator is broken: every later collective fails at once
 *    with FAILED_PRECONDITION "the communicator failed earlier: <the first
 *    error>". A timed-out MPI request is abandoned, not waited for, cancelled
 *    or freed (MPI cannot cancel a collective, and freeing an active
 *    collective request is not portable); it and its buffers are leaked, so
 *    that a rank that joins late writes into memory still owned.
 *  - INVALID_ARGUMENT for a NULL comm or counts array, a NULL buffer with
 *    non-zero bytes, totals that overflow 64 bits, and (size 1) send and
 *    receive counts that differ. Every rank must pass counts that match its
 *    peers' (send_bytes[j] on rank i == recv_bytes[i] on rank j); MPI may
 *    detect a mismatch (UNAVAILABLE, "message truncated") or not.
 *  - RESOURCE_EXHAUSTED when the staging buffers cannot be allocated.
 *  - Thread safety: calls on one communicator are serialized by a mutex;
 *    distinct communicators may be used concurrently (MPI permitting).
 *
 * Errors: INVALID_ARGUMENT for a NULL out_comm, MPI_COMM_NULL or a negative
 * timeout_ms; FAILED_PRECONDITION when MPI is not initialized or already
 * finalized; UNAVAILABLE with MPI's error text when MPI_Comm_dup fails;
 * RESOURCE_EXHAUSTED when out of memory. On error *out_comm is NULL.
 * Thread safety: as MPI_Comm_dup on `comm`. */
dynrt_status_t dynrt_mpi_comm_create(MPI_Comm comm, int32_t timeout_ms,
                                     dynrt_comm_t **out_comm);

/* Releases a communicator made by dynrt_mpi_comm_create; NULL is ignored.
 * Frees the duplicate communicator (MPI_Comm_free, local in practice) when
 * MPI is not finalized yet and the communicator never failed; a failed one
 * (timeout, MPI error) keeps its duplicate and abandoned request leaked, so
 * that releasing can never block. Call it before MPI_Finalize, after the
 * models that use the communicator are destroyed.
 * Thread safety: once per communicator, after every other use of it. */
void dynrt_mpi_comm_release(dynrt_comm_t *comm);

/* Counters of a communicator made by dynrt_mpi_comm_create, for benchmarks:
 * collectives called (alltoallv and allgather, including failed ones),
 * bytes this rank sent to other ranks (its own share is not counted), and
 * wall-clock seconds spent inside the collectives (staging copies included).
 * NULL out-pointers are skipped; a NULL comm gives zeros.
 * Thread safety: safe to call concurrently with the collectives. */
void dynrt_mpi_comm_stats(const dynrt_comm_t *comm, uint64_t *calls,
                          uint64_t *bytes_sent, double *seconds);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DYNRT_MPI_H */
