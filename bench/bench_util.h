/* bench_util.h - the clock and median helpers of the C benchmark drivers. */
#ifndef DYNCC_BENCH_UTIL_H
#define DYNCC_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline int bench_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts `t` and returns its median. */
static inline double bench_median(double *t, int n) {
  qsort(t, n, sizeof(double), bench_cmp);
  return t[n / 2];
}

#endif /* DYNCC_BENCH_UTIL_H */
