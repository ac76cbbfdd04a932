//===- fma_peak.c - the fp32 FMA issue rate of this CPU -------------------===//
//
// The machine's own fp32 ceiling, beside WORKLOADS.md's probed peak (the
// best GFLOP/s of PyTorch's matmul, a GEMM that itself falls short of it):
// T threads each run 12 independent chains of fused multiply-adds on the
// widest vectors the CPU has (AVX-512, else AVX2 + FMA, else SSE multiplies
// and adds), long enough for the clock to settle; prints the best of 5 runs
// in GFLOP/s (2 per multiply-add, all threads together), on every CPU the
// process may use.
//
//   dyncc-fma-peak [threads]       (bench_util.fma_peak)
//
//===----------------------------------------------------------------------===//

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { kChains = 12 };
static const long kSteps = 40000000; // per chain: about 0.15 s a run

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// The chains start apart (read through a volatile) so that the compiler
// cannot merge them; a * x + y converges, never overflows.
static volatile float kStart[kChains] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

#define CHAINS(T, set1, fma, add, reduce, lanes)                               \
  T c[kChains];                                                                \
  for (int i = 0; i < kChains; ++i)                                            \
    c[i] = set1(kStart[i]);                                                    \
  const T x = set1(0.9999999f), y = set1(1e-7f);                               \
  for (long s = 0; s < kSteps; ++s) {                                          \
    c[0] = fma(c[0], x, y);                                                    \
    c[1] = fma(c[1], x, y);                                                    \
    c[2] = fma(c[2], x, y);                                                    \
    c[3] = fma(c[3], x, y);                                                    \
    c[4] = fma(c[4], x, y);                                                    \
    c[5] = fma(c[5], x, y);                                                    \
    c[6] = fma(c[6], x, y);                                                    \
    c[7] = fma(c[7], x, y);                                                    \
    c[8] = fma(c[8], x, y);                                                    \
    c[9] = fma(c[9], x, y);                                                    \
    c[10] = fma(c[10], x, y);                                                  \
    c[11] = fma(c[11], x, y);                                                  \
  }                                                                            \
  T sum = c[0];                                                                \
  for (int i = 1; i < kChains; ++i)                                            \
    sum = add(sum, c[i]);                                                      \
  *out = reduce(sum);                                                          \
  return lanes;

__attribute__((target("avx512f"))) static float sum512(__m512 v) {
  return _mm512_reduce_add_ps(v);
}
__attribute__((target("avx512f"))) static int run512(float *out) {
  CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, sum512, 16)
}

__attribute__((target("avx2,fma"))) static float sum256(__m256 v) {
  float l[8];
  _mm256_storeu_ps(l, v);
  return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}
__attribute__((target("avx2,fma"))) static int run256(float *out) {
  CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, sum256, 8)
}

// Without FMA: a multiply and an add per step (counted as one multiply-add).
static __m128 mulAdd128(__m128 a, __m128 b, __m128 c) {
  return _mm_add_ps(_mm_mul_ps(a, b), c);
}
static float sum128(__m128 v) {
  float l[4];
  _mm_storeu_ps(l, v);
  return l[0] + l[1] + l[2] + l[3];
}
static int run128(float *out) {
  CHAINS(__m128, _mm_set1_ps, mulAdd128, _mm_add_ps, sum128, 4)
}

static const char *isa = "sse";
static int (*runChains)(float *) = run128;
static int lanes = 4;

static void *thread(void *arg) {
  runChains((float *)arg);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 1024) {
    fprintf(stderr, "usage: %s [threads]\n", argv[0]);
    return 2;
  }
  // Every CPU this process may use, whatever its parent pinned it to (a
  // Python process whose OpenMP runtime bound its main thread to one core
  // would otherwise put all the threads there).
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    CPU_SET(c, &all);
  sched_setaffinity(0, sizeof all, &all); // the allowed ones, or unchanged
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    isa = "avx512";
    runChains = run512;
    lanes = 16;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa = "avx2";
    runChains = run256;
    lanes = 8;
  }
  pthread_t *ids = calloc(threads, sizeof *ids);
  float *results = calloc(threads, sizeof *results);
  if (!ids || !results)
    return 1;
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    double start = now();
    for (int t = 0; t < threads; ++t)
      if (pthread_create(&ids[t], NULL, thread, &results[t]) != 0)
        return 1;
    for (int t = 0; t < threads; ++t)
      pthread_join(ids[t], NULL);
    double seconds = now() - start;
    double flops = 2.0 * lanes * kChains * (double)kSteps * threads;
    if (flops / seconds > best)
      best = flops / seconds;
  }
  // The chains' sum keeps them live (and shows they converged: ~12 * lanes).
  printf("%.1f GFLOP/s fp32 (%s, %d threads; checksum %.0f)\n", best / 1e9,
         isa, threads, results[0]);
  free(ids);
  free(results);
  return 0;
}
