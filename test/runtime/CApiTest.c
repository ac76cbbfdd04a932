/* CApiTest.c - proves that dynrt.h is a C99 header and that the C API works
 * from C: statuses, weights opened from memory, lookup, binding, errors, the
 * routing, skimming and batch bucket declarations, model options and the
 * CUDA check. */
#include "runtime/dynrt.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

/* Fails the test on an error status, printing it, and frees it. */
static int ok(dynrt_status_t status) {
  if (!status)
    return 1;
  fprintf(stderr, "unexpected error %s: %s\n",
          dynrt_status_code_name(dynrt_status_code(status)),
          dynrt_status_message(status));
  dynrt_status_free(status);
  ++failures;
  return 0;
}

int main(void) {
  static const char header[] =
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  const float values[2] = {1.5f, -2.0f};
  unsigned char image[256];
  size_t headerSize = sizeof(header) - 1;
  size_t i;
  dynrt_weights_t *weights = NULL;
  dynrt_tensor_info_t info;
  dynrt_param_spec_t spec;
  const void *data[1] = {NULL};
  dynrt_status_t status;

  CHECK(dynrt_status_code(NULL) == DYNRT_OK);
  CHECK(strcmp(dynrt_status_message(NULL), "") == 0);
  CHECK(dynrt_dtype_size(DYNRT_BF16) == 2);

  for (i = 0; i < 8; ++i)
    image[i] = (unsigned char)(headerSize >> (8 * i));
  memcpy(image + 8, header, headerSize);
  memcpy(image + 8 + headerSize, values, sizeof(values));

  if (ok(dynrt_weights_open_memory(image, 8 + headerSize + sizeof(values),
                                   &weights))) {
    CHECK(dynrt_weights_count(weights) == 1);
    if (ok(dynrt_weights_find(weights, "w", &info))) {
      CHECK(info.dtype == DYNRT_F32 && info.rank == 1 && info.shape[0] == 2);
      float second; /* the data section is not aligned for float */
      memcpy(&second, (const char *)info.data + sizeof(float), sizeof(float));
      CHECK(second == -2.0f);
    }
    memset(&spec, 0, sizeof(spec));
    spec.name = "w";
    spec.dtype = DYNRT_F32;
    spec.rank = 1;
    spec.shape[0] = 2;
    if (ok(dynrt_weights_bind(weights, &spec, 1, data)))
      CHECK(data[0] == info.data);
    dynrt_weights_release(weights);
  }

  /* The routing declarations are C too (no model is run here). */
  {
    dynrt_route_report_t route;
    dynrt_run_report_t report;
    dynrt_kernel_desc_t kernel;
    memset(&route, 0, sizeof(route));
    memset(&kernel, 0, sizeof(kernel));
    report.num_routes = 1;
    report.routes = &route;
    kernel.builtin = DYNRT_BUILTIN_ROUTE_ASSIGN;
    CHECK(report.routes->assignment == NULL && kernel.fn == NULL);
    CHECK(DYNRT_ROUTE_CFG_COUNT == 18 && kernel.builtin == 1);
  }

  /* So are the skimming declarations (no model is run here either). */
  {
    int32_t trace[3 * 4], sample_steps[2];
    dynrt_skip_report_t skip;
    dynrt_skip_desc_t desc;
    dynrt_run_report_t report;
    dynrt_model_desc_t model;
    memset(&report, 0, sizeof(report));
    memset(&model, 0, sizeof(model));
    skip.steps = 0;
    skip.capacity = 4;
    skip.trace = trace;
    skip.sample_steps = sample_steps; /* a bucketed model's samples */
    desc.name = "skip0";
    desc.sequence_length = 8;
    desc.budget = 4;
    desc.num_actions = 3;
    report.num_skips = 1;
    report.skips = &skip;
    model.num_skips = 1;
    model.skips = &desc;
    CHECK(report.skips->trace == trace && model.skips->budget == 4);
    CHECK(report.skips->sample_steps == sample_steps);
    CHECK(DYNRT_BUILTIN_SKIP_STEP == 2 && DYNRT_SKIP_CFG_COUNT == 4);
  }

  /* So are the batch bucket declarations: the descriptor's buckets, the
   * compaction builtin, the report's stages and dynrt_model_run_batch. */
  {
    static const int32_t buckets[3] = {1, 4, 8};
    int32_t active[2], bucket[2];
    dynrt_run_report_t report;
    dynrt_model_desc_t model;
    memset(&report, 0, sizeof(report));
    memset(&model, 0, sizeof(model));
    model.max_batch = 8;
    model.num_buckets = 3;
    model.buckets = buckets;
    model.num_stages = 2;
    report.num_stages = 2;
    report.active = active;
    report.bucket = bucket;
    CHECK(model.buckets[model.num_buckets - 1] == model.max_batch);
    CHECK(report.active == active && report.bucket == bucket);
    CHECK(DYNRT_MODEL_ABI_VERSION == 8);
    CHECK(DYNRT_BUILTIN_BATCH_COMPACT == 3 && DYNRT_COMPACT_CFG_COUNT == 6);
    CHECK(DYNRT_COMPACT_CFG_REMAINING == 5);
    /* Unevaluated (no model is linked here): the prototype is C. */
    CHECK(sizeof(dynrt_model_run_batch(NULL, 3, NULL, NULL, &report)) ==
          sizeof(dynrt_status_t));
  }

  /* Model options and devices; CUDA may be missing here, but the answer
   * must be NULL or UNAVAILABLE with a message. */
  {
    dynrt_model_options_t options;
    dynrt_model_desc_t model;
    options.num_threads = 3;
    options.device = DYNRT_DEVICE_CUDA;
    options.comm = (dynrt_comm_t *)&options;
    dynrt_model_options_initialize(&options);
    CHECK(options.num_threads == 0 && options.device == DYNRT_DEVICE_AUTO);
    CHECK(options.comm == NULL);
    /* Expert parallelism (ABI 6): the communicator table is C. */
    {
      dynrt_comm_t comm;
      memset(&comm, 0, sizeof(comm));
      comm.size = 1;
      CHECK(comm.rank == 0 && comm.alltoallv == NULL && comm.impl == NULL);
      model.num_ranks = 0;
      model.weight_sharded = NULL;
      /* ABI 7: weights kept as bf16 (--precision=bf16). */
      model.weight_storage = NULL;
      CHECK(model.weight_storage == NULL && DYNRT_BF16 == 3);
      CHECK(DYNRT_BUILTIN_EXPERT_EXCHANGE == 4 &&
            DYNRT_EXCHANGE_CFG_COUNT == 6);
    }
    memset(&model, 0, sizeof(model));
    model.device = DYNRT_DEVICE_CUDA;
    CHECK(model.device == 1 && DYNRT_DEVICE_CPU == 0);
    status = dynrt_cuda_available();
    if (status) {
      CHECK(dynrt_status_code(status) == DYNRT_UNAVAILABLE);
      CHECK(strlen(dynrt_status_message(status)) > 0);
      printf("no CUDA: %s\n", dynrt_status_message(status));
      dynrt_status_free(status);
    }
  }

  status = dynrt_weights_open_file("/nonexistent/dynrt/weights.safetensors",
                                   &weights);
  CHECK(dynrt_status_code(status) == DYNRT_NOT_FOUND);
  CHECK(strstr(dynrt_status_message(status), "/nonexistent/dynrt") != NULL);
  dynrt_status_free(status);

  if (failures)
    fprintf(stderr, "%d checks failed\n", failures);
  else
    printf("dynrt C API: all checks passed\n");
  return failures ? 1 : 0;
}
