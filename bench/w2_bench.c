/* W2: times the early-exit encoder compiled by dyncc at batch 1 with the
 * exit forced to a layer through the patience parameter (the example's
 * weights make every internal classifier agree, so patience k exits at
 * layer k + 1; k >= the number of layers never exits). Prints, per requested
 * layer, "layer median_ms exit_layer".
 *   w2_bench weights.safetensors x.bin runs layer...   (0: no exit) */
#include "w2.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  int runs = atoi(argv[3]);
  dynrt_model_options_t options;
  dynrt_model_options_initialize(&options);
  options.num_threads = 2;
  dynrt_model_t *model = NULL;
  dynrt_status_t st = w2_create(&options, argv[1], &model);
  if (st) {
    fprintf(stderr, "%s\n", dynrt_status_message(st));
    return 1;
  }
  size_t nx = 1;
  for (int d = 0; d < w2_desc.inputs[0].rank; ++d)
    nx *= (size_t)w2_desc.inputs[0].shape[d];
  float *x = aligned_alloc(64, (nx * 4 + 63) / 64 * 64);
  float y[64] __attribute__((aligned(64)));
  int32_t layer[64] __attribute__((aligned(64)));
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(x, 4, nx, f) != nx)
    return 1;
  fclose(f);
  double *t = malloc(sizeof(double) * runs);
  for (int a = 4; a < argc; ++a) {
    int want = atoi(argv[a]);
    float k = want > 0 ? (float)(want - 1) : 1000.0f;
    st = dynrt_model_set_param(model, "patience", &k, 1);
    if (st) {
      fprintf(stderr, "%s\n", dynrt_status_message(st));
      return 1;
    }
    for (int i = 0; i < 3; ++i)
      w2_run(model, x, y, layer);
    for (int r = 0; r < runs; ++r) {
      double start = bench_now();
      w2_run(model, x, y, layer);
      t[r] = (bench_now() - start) * 1e3;
    }
    printf("%d %.3f %d\n", want, bench_median(t, runs), layer[0]);
  }
  dynrt_model_destroy(model);
  return 0;
}
