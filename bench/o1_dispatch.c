/* O1: times a chain model (bench/o1_chain.py) compiled by dyncc; prints the
 * median microseconds per kernel call over RUNS timed batches.
 *   o1 WEIGHTS [RUNS] [CALLS]
 * CALLS: the kernel calls per run, the chain's length (dyncc compiles one
 * kernel for its identical links, called once per link: chain_desc's
 * num_kernels counts kernels, not calls). */
#include "chain.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  int runs = argc > 2 ? atoi(argv[2]) : 15, iters = 2000;
  int calls = argc > 3 ? atoi(argv[3]) : chain_desc.num_kernels;
  if (runs < 1 || calls < 1) {
    fprintf(stderr, "usage: o1 WEIGHTS [RUNS >= 1] [CALLS >= 1]\n");
    return 2;
  }
  dynrt_model_options_t options;
  dynrt_model_options_initialize(&options);
  options.num_threads = 2;
  dynrt_model_t *model = NULL;
  dynrt_status_t st = chain_create(&options, argv[1], &model);
  if (st) {
    fprintf(stderr, "%s\n", dynrt_status_message(st));
    return 1;
  }
  float x[8] __attribute__((aligned(64))) = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
  float y[8] __attribute__((aligned(64)));
  for (int i = 0; i < 200; ++i)
    chain_run(model, x, y);
  double *t = malloc(sizeof(double) * runs);
  for (int r = 0; r < runs; ++r) {
    double start = bench_now();
    for (int i = 0; i < iters; ++i)
      chain_run(model, x, y);
    t[r] = (bench_now() - start) / iters;
  }
  printf("%.3f\n", bench_median(t, runs) / calls * 1e6);
  dynrt_model_destroy(model);
  return 0;
}
