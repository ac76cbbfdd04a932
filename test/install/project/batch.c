/* batch.c - the mlp of examples/embed with its weights compiled in, as a
 * shared library bucketed for batches of 1 and 2: a batch of two samples
 * gives what each sample gives alone, and every row is a distribution. */
#include "mlpb.h"

#include <math.h>
#include <stdio.h>

static int check(dynrt_status_t status) {
  if (!status)
    return 0;
  fprintf(stderr, "error: %s\n", dynrt_status_message(status));
  dynrt_status_free(status);
  return 1;
}

int main(void) {
  dynrt_model_t *model = NULL;
  /* NULL weights: the ones embedded by EMBED_WEIGHTS. */
  if (check(mlpb_create(NULL, NULL, &model)))
    return 1;

  enum { SAMPLE_IN = 4 * 8, SAMPLE_OUT = 4 * 3 };
  float x[2 * SAMPLE_IN], both[2 * SAMPLE_OUT], alone[2 * SAMPLE_OUT];
  for (int i = 0; i < 2 * SAMPLE_IN; ++i)
    x[i] = (float)(i % 11) * 0.2f - 1.0f;
  if (check(mlpb_run_batch(model, 2, x, both, NULL)) ||
      check(mlpb_run_batch(model, 1, x, alone, NULL)) ||
      check(mlpb_run_batch(model, 1, x + SAMPLE_IN, alone + SAMPLE_OUT, NULL)))
    return 1;
  dynrt_model_destroy(model);

  double worst = 0;
  for (int i = 0; i < 2 * SAMPLE_OUT; ++i)
    worst = fmax(worst, fabs(both[i] - alone[i]));
  for (int row = 0; row < 2 * 4; ++row) {
    double sum = 0;
    for (int c = 0; c < 3; ++c)
      sum += both[row * 3 + c];
    worst = fmax(worst, fabs(sum - 1));
  }
  printf("max abs difference: %.2g\n", worst);
  if (worst > 1e-6)
    return 1;
  printf("batch of 2 = 2 x batch of 1\n");
  return 0;
}
