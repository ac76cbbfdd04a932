# install.add-model-errors.<case> (test/install/CMakeLists.txt), run with
# cmake -DCASE=<case> -P: one wrong call of dyncc_add_model per case; the
# test expects its FATAL_ERROR message. Every check runs before the function
# defines anything, so script mode is enough.
include("${CMAKE_CURRENT_LIST_DIR}/../../cmake/DynccModel.cmake")

if(CASE STREQUAL "no-source")
  dyncc_add_model(m WEIGHTS m.safetensors)
elseif(CASE STREQUAL "unknown-argument")
  dyncc_add_model(m SOURCE m.mlir BATCH_SIZE 4)
elseif(CASE STREQUAL "missing-value")
  dyncc_add_model(m SOURCE m.mlir EMBED_WEIGHTS)
elseif(CASE STREQUAL "bad-name")
  dyncc_add_model(m SOURCE m.mlir NAME 2-layer)
elseif(CASE STREQUAL "buckets-descending")
  dyncc_add_model(m SOURCE m.mlir BATCH_BUCKETS 8 4)
elseif(CASE STREQUAL "buckets-zero")
  dyncc_add_model(m SOURCE m.mlir BATCH_BUCKETS 0 4)
elseif(CASE STREQUAL "buckets-too-large")
  dyncc_add_model(m SOURCE m.mlir BATCH_BUCKETS 1 8192)
elseif(CASE STREQUAL "options-shared")
  dyncc_add_model(m SOURCE m.mlir OPTIONS --compaction=auto --shared)
elseif(CASE STREQUAL "options-output")
  dyncc_add_model(m SOURCE m.mlir OPTIONS -o elsewhere/m)
else()
  message(FATAL_ERROR "add_model_errors.cmake: unknown CASE '${CASE}'")
endif()
message(FATAL_ERROR "dyncc_add_model accepted case '${CASE}'")
