/* W2: times the early-exit encoder (entropy criterion) compiled by dyncc at
 * batch 1, with the exit at a chosen layer: for the cases of x.bin in turn,
 * the entropy threshold theta is bisected (a runtime parameter, no
 * recompilation) until the sample exits at that layer (larger theta, earlier
 * exit); theta = 0 never exits. Prints, per requested layer,
 * "layer median_ms exit_layer case".
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
  FILE *f = fopen(argv[2], "rb");
  if (!f)
    return 1;
  fseek(f, 0, SEEK_END);
  size_t cases = (size_t)ftell(f) / (nx * 4);
  fseek(f, 0, SEEK_SET);
  float *xs = aligned_alloc(64, (cases * nx * 4 + 63) / 64 * 64);
  if (fread(xs, 4, cases * nx, f) != cases * nx)
    return 1;
  fclose(f);
  float *x = xs;
  float y[64] __attribute__((aligned(64)));
  int32_t layer[64] __attribute__((aligned(64)));
  double *t = malloc(sizeof(double) * runs);
  for (int a = 4; a < argc; ++a) {
    int want = atoi(argv[a]);
    float theta = 0.0f;
    size_t c = 0;
    for (; want > 0 && c < cases; ++c) {
      float lo = 0.0f, hi = 1.0f; /* 2 classes: H <= ln 2 */
      x = xs + c * nx;
      for (int it = 0; it < 40; ++it) {
        theta = 0.5f * (lo + hi);
        dynrt_model_set_param(model, "theta", &theta, 1);
        w2_run(model, x, y, layer);
        if (layer[0] == want)
          break;
        if (layer[0] > want)
          lo = theta; /* exits too late: raise theta */
        else
          hi = theta;
      }
      if (layer[0] == want)
        break;
    }
    if (want == 0)
      x = xs;
    st = dynrt_model_set_param(model, "theta", &theta, 1);
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
    printf("%d %.3f %d %zu\n", want, bench_median(t, runs), layer[0], c);
  }
  dynrt_model_destroy(model);
  return 0;
}
