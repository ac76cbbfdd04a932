/* MpiCApiTest.c - dynrt_mpi.h is C99 (compiled with -std=c99 -pedantic
 * -Werror) and usable from C: one allgather and one alltoallv through the
 * table, run by the ctest mpi.c-api under mpirun -np 2. Exit code 0 on
 * success. */
#include "runtime/mpi/dynrt_mpi.h"

#include <stdio.h>
#include <string.h>

static int failed(dynrt_status_t st, const char *what) {
  if (!st)
    return 0;
  fprintf(stderr, "%s: %s: %s\n", what, dynrt_status_code_name(dynrt_status_code(st)),
          dynrt_status_message(st));
  dynrt_status_free(st);
  return 1;
}

int main(int argc, char **argv) {
  dynrt_comm_t *comm = NULL;
  int rank = 0, size = 0, bad = 0, i;
  uint64_t send_bytes[64], recv_bytes[64];
  int32_t mine, all[64], back[64];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 64 || failed(dynrt_mpi_comm_create(MPI_COMM_WORLD, 0, &comm), "create")) {
    MPI_Finalize();
    return 1;
  }
  mine = 100 + rank;
  bad |= failed(comm->allgather(comm, &mine, sizeof mine, all), "allgather");
  for (i = 0; i < size; ++i) {
    bad |= all[i] != 100 + i;
    send_bytes[i] = recv_bytes[i] = sizeof(int32_t);
    all[i] = rank * 1000 + i; /* to rank i */
  }
  bad |= failed(comm->alltoallv(comm, all, send_bytes, back, recv_bytes), "alltoallv");
  for (i = 0; i < size; ++i)
    bad |= back[i] != i * 1000 + rank;
  dynrt_mpi_comm_release(comm);
  MPI_Finalize();
  if (bad)
    fprintf(stderr, "rank %d: wrong data\n", rank);
  return bad;
}
