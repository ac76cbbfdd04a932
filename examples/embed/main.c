/* main.c - runs the mlp model compiled by dyncc, checks it against a plain C
 * computation with the same weights, and prints both. */
#include "mlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check(dynrt_status_t status) {
  if (!status)
    return 0;
  fprintf(stderr, "error: %s\n", dynrt_status_message(status));
  dynrt_status_free(status);
  return 1;
}

/* softmax(relu(x W1 + b1) W2), naively, for comparison. */
static void reference(const float *x, const float *w1, const float *b1,
                      const float *w2, float *out) {
  for (int r = 0; r < 4; ++r) {
    double h[16], l[3], max = -INFINITY, sum = 0;
    for (int j = 0; j < 16; ++j) {
      h[j] = b1[j];
      for (int k = 0; k < 8; ++k)
        h[j] += (double)x[r * 8 + k] * w1[k * 16 + j];
      h[j] = h[j] > 0 ? h[j] : 0;
    }
    for (int c = 0; c < 3; ++c) {
      l[c] = 0;
      for (int j = 0; j < 16; ++j)
        l[c] += h[j] * w2[j * 3 + c];
      max = l[c] > max ? l[c] : max;
    }
    for (int c = 0; c < 3; ++c)
      sum += exp(l[c] - max);
    for (int c = 0; c < 3; ++c)
      out[r * 3 + c] = (float)(exp(l[c] - max) / sum);
  }
}

int main(int argc, char **argv) {
  const char *weights_path = argc > 1 ? argv[1] : MLP_WEIGHTS_PATH;
  dynrt_model_options_t options;
  dynrt_model_options_initialize(&options);
  options.num_threads = 2;
  dynrt_model_t *model = NULL;
  if (check(mlp_create(&options, weights_path, &model)))
    return 1;

  float x[4 * 8], y[4 * 3], want[4 * 3];
  for (int i = 0; i < 32; ++i)
    x[i] = (float)(i % 7) * 0.25f - 0.5f;
  if (check(mlp_run(model, x, y)))
    return 1;

  /* The same weights through the runtime's safetensors reader. */
  dynrt_weights_t *weights = NULL;
  dynrt_tensor_info_t w1, b1, w2;
  if (check(dynrt_weights_open_file(weights_path, &weights)) ||
      check(dynrt_weights_find(weights, "fc1.weight", &w1)) ||
      check(dynrt_weights_find(weights, "fc1.bias", &b1)) ||
      check(dynrt_weights_find(weights, "fc2.weight", &w2)))
    return 1;
  reference(x, w1.data, b1.data, w2.data, want);
  dynrt_weights_release(weights);

  double worst = 0;
  for (int i = 0; i < 12; ++i) {
    double err = fabs(y[i] - want[i]);
    worst = err > worst ? err : worst;
  }
  printf("probabilities:");
  for (int i = 0; i < 12; ++i)
    printf(" %.5f", y[i]);
  printf("\nmax abs error vs plain C: %.2g\n", worst);

  dynrt_model_stats_t stats;
  if (check(dynrt_model_stats(model, &stats)))
    return 1;
  printf("runs: %llu, kernel calls: %llu\n", (unsigned long long)stats.runs,
         (unsigned long long)stats.kernel_calls);
  dynrt_model_destroy(model);
  return worst <= 1e-5 ? 0 : 1;
}
