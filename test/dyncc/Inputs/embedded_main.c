/* Runs examples/embed/mlp.mlir compiled with --embed-weights: no file. */
#include "mlp.h"
#include <stdio.h>
int main(void) {
  dynrt_model_t *model = NULL;
  dynrt_status_t st = mlp_create(NULL, NULL, &model);
  if (st) {
    printf("error: %s\n", dynrt_status_message(st));
    return 1;
  }
  float x[32], y[12];
  for (int i = 0; i < 32; ++i)
    x[i] = (float)(i % 7) * 0.25f - 0.5f;
  st = mlp_run(model, x, y);
  if (st) {
    printf("error: %s\n", dynrt_status_message(st));
    return 1;
  }
  for (int i = 0; i < 12; ++i)
    printf("%.5f\n", y[i]);
  dynrt_model_destroy(model);
  return 0;
}
