/* Times the encoder example compiled by dyncc (bench/run-encoder.sh): the
 * median milliseconds of RUNS forward passes after warm-up, and the peak
 * resident memory of the process.
 *   encoder_bench weights.safetensors x.bin runs */
#include "encoder.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static size_t elements(const dynrt_param_spec_t *spec) {
  size_t n = 1;
  for (int d = 0; d < spec->rank; ++d)
    n *= (size_t)spec->shape[d];
  return n;
}

int main(int argc, char **argv) {
  int runs = argc > 3 ? atoi(argv[3]) : 20;
  dynrt_model_options_t options;
  dynrt_model_options_initialize(&options);
  options.num_threads = 2;
  dynrt_model_t *model = NULL;
  dynrt_status_t st = encoder_create(&options, argv[1], &model);
  if (st) {
    fprintf(stderr, "%s\n", dynrt_status_message(st));
    return 1;
  }
  size_t nx = elements(&encoder_desc.inputs[0]);
  size_t ny = elements(&encoder_desc.outputs[0]);
  float *x = aligned_alloc(64, (nx * 4 + 63) / 64 * 64);
  float *y = aligned_alloc(64, (ny * 4 + 63) / 64 * 64);
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(x, 4, nx, f) != nx) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 1;
  }
  fclose(f);
  for (int i = 0; i < 3; ++i)
    encoder_run(model, x, y);
  double *t = malloc(sizeof(double) * runs);
  for (int r = 0; r < runs; ++r) {
    double start = bench_now();
    st = encoder_run(model, x, y);
    t[r] = (bench_now() - start) * 1e3;
    if (st) {
      fprintf(stderr, "%s\n", dynrt_status_message(st));
      return 1;
    }
  }
  double median = bench_median(t, runs);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  printf("%.3f %.1f %llu\n", median, usage.ru_maxrss / 1024.0,
         (unsigned long long)encoder_desc.arena_bytes);
  dynrt_model_destroy(model);
  return 0;
}
