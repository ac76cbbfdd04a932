# dyncc_add_model: compile a model with dyncc as part of a CMake build.
#
#   find_package(dyncc REQUIRED CONFIG)      # an installed dyncc, or
#   include(path/to/dyncc/cmake/DynccModel.cmake)
#
#   dyncc_add_model(<target> SOURCE <model.mlir>
#                   [NAME <c identifier>]         # default: <target>
#                   [WEIGHTS <file.safetensors>]  # defines <NAME>_WEIGHTS_PATH
#                   [EMBED_WEIGHTS <file.safetensors>]
#                   [KERNEL_TARGET host|generic|cuda|<halide target>]
#                   [BATCH_BUCKETS <size>...]     # e.g. 1 4 8 16 32
#                   [SHARED]
#                   [OPTIONS <dyncc compile argument>...])
#   target_link_libraries(app PRIVATE <target>)
#
# <target> is an INTERFACE library: linking it adds the generated
# lib<name>.a (model, libdynrt and Halide runtime inside; with SHARED,
# lib<name>.so), the directory of <name>.h and dynrt.h, and the system
# libraries they need. Nothing else: no fmt, MLIR or Halide. The model is
# recompiled when the .mlir file, the embedded weights or dyncc change.
#
# The keywords are `dyncc compile` options (`dyncc compile --help`):
#   EMBED_WEIGHTS  --embed-weights=<file>: the weights are compiled into the
#                  library; <name>_create(options, NULL, &model) loads them.
#   BATCH_BUCKETS  --batch-buckets=<s1>,<s2>,...: ascending sizes in
#                  [1, 4096]; the header gets <name>_run_batch.
#   SHARED         --shared: lib<name>.so (linked with the system 'cc'); the
#                  program finds it through its build RPATH.
#   OPTIONS        anything else, as is (e.g. --compaction=always).
#
# The dyncc executable: DYNCC_EXECUTABLE (cache variable), else the `dyncc`
# target of this build, else dyncc::dyncc (find_package(dyncc)), else
# `dyncc` on PATH.

function(dyncc_add_model target)
  set(fn "dyncc_add_model(${target})")
  cmake_parse_arguments(PARSE_ARGV 1 ARG "SHARED"
    "SOURCE;NAME;WEIGHTS;EMBED_WEIGHTS;KERNEL_TARGET" "BATCH_BUCKETS;OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    list(JOIN ARG_UNPARSED_ARGUMENTS " " unknown)
    message(FATAL_ERROR "${fn}: unknown arguments: ${unknown} "
      "(expected SOURCE, NAME, WEIGHTS, EMBED_WEIGHTS, KERNEL_TARGET, "
      "BATCH_BUCKETS, SHARED, OPTIONS)")
  endif()
  if(ARG_KEYWORDS_MISSING_VALUES)
    list(JOIN ARG_KEYWORDS_MISSING_VALUES ", " missing)
    message(FATAL_ERROR "${fn}: ${missing} needs a value")
  endif()
  if(TARGET ${target})
    message(FATAL_ERROR "${fn}: a target named '${target}' already exists")
  endif()
  if(NOT ARG_SOURCE)
    message(FATAL_ERROR "${fn}: SOURCE is required")
  endif()
  if(NOT ARG_NAME)
    set(ARG_NAME "${target}")
  endif()
  if(NOT ARG_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "${fn}: the model name '${ARG_NAME}' is not a C "
      "identifier (it prefixes the generated functions); give NAME")
  endif()
  if(NOT ARG_KERNEL_TARGET)
    set(ARG_KERNEL_TARGET host)
  endif()

  get_filename_component(source "${ARG_SOURCE}" ABSOLUTE)
  set(args compile "${source}" --target=${ARG_KERNEL_TARGET})
  set(depends "${source}")
  if(ARG_EMBED_WEIGHTS)
    get_filename_component(embedded "${ARG_EMBED_WEIGHTS}" ABSOLUTE)
    list(APPEND args "--embed-weights=${embedded}")
    list(APPEND depends "${embedded}")
  endif()
  if(ARG_BATCH_BUCKETS)
    list(JOIN ARG_BATCH_BUCKETS " " buckets)
    set(previous 0)
    foreach(size IN LISTS ARG_BATCH_BUCKETS)
      if(NOT size MATCHES "^[1-9][0-9]*$" OR size GREATER 4096
         OR NOT size GREATER previous)
        message(FATAL_ERROR "${fn}: BATCH_BUCKETS must be ascending sizes in "
          "[1, 4096], got '${buckets}'")
      endif()
      set(previous ${size})
    endforeach()
    list(JOIN ARG_BATCH_BUCKETS "," buckets)
    list(APPEND args "--batch-buckets=${buckets}")
  endif()
  if(ARG_SHARED)
    list(APPEND args --shared)
  endif()
  # The outputs and the options that have a keyword are this function's.
  foreach(option IN LISTS ARG_OPTIONS)
    if(option MATCHES "^(-o|--?emit|--?shared|--?embed-weights|--?batch-buckets|--?target)(=.*)?$")
      message(FATAL_ERROR "${fn}: OPTIONS may not contain '${option}': the "
        "outputs are this function's, and --shared, --embed-weights, "
        "--batch-buckets and --target are SHARED, EMBED_WEIGHTS, "
        "BATCH_BUCKETS and KERNEL_TARGET")
    endif()
  endforeach()
  list(APPEND args ${ARG_OPTIONS})

  if(DYNCC_EXECUTABLE)
    set(dyncc "${DYNCC_EXECUTABLE}")
    set(dyncc_dep "${DYNCC_EXECUTABLE}")
  elseif(TARGET dyncc)
    set(dyncc "$<TARGET_FILE:dyncc>")
    set(dyncc_dep dyncc)
  elseif(TARGET dyncc::dyncc)
    set(dyncc "$<TARGET_FILE:dyncc::dyncc>")
    set(dyncc_dep "$<TARGET_FILE:dyncc::dyncc>")
  else()
    find_program(DYNCC_FOUND_EXECUTABLE dyncc REQUIRED)
    set(dyncc "${DYNCC_FOUND_EXECUTABLE}")
    set(dyncc_dep "${DYNCC_FOUND_EXECUTABLE}")
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/dyncc/${target}")
  if(ARG_SHARED)
    set(lib "${out_dir}/lib${ARG_NAME}.so")
  else()
    set(lib "${out_dir}/lib${ARG_NAME}.a")
  endif()
  add_custom_command(
    OUTPUT "${lib}" "${out_dir}/${ARG_NAME}.h" "${out_dir}/dynrt.h"
    COMMAND "${dyncc}" ${args} -o "${out_dir}/${ARG_NAME}"
    DEPENDS ${depends} ${dyncc_dep}
    COMMENT "dyncc: compiling ${ARG_SOURCE}"
    VERBATIM)
  add_custom_target(${target}_dyncc DEPENDS "${lib}")

  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_dyncc)
  target_include_directories(${target} INTERFACE "${out_dir}")
  if(ARG_SHARED)
    # The shared object has no SONAME: linked by name, found through RPATH.
    add_library(${target}_shared SHARED IMPORTED GLOBAL)
    set_target_properties(${target}_shared PROPERTIES
      IMPORTED_LOCATION "${lib}"
      IMPORTED_NO_SONAME TRUE)
    target_link_libraries(${target} INTERFACE ${target}_shared)
  else()
    find_package(Threads REQUIRED)
    target_link_libraries(${target} INTERFACE
      "${lib}" Threads::Threads ${CMAKE_DL_LIBS} stdc++ m)
  endif()
  if(ARG_WEIGHTS)
    get_filename_component(weights "${ARG_WEIGHTS}" ABSOLUTE)
    string(TOUPPER "${ARG_NAME}" upper)
    target_compile_definitions(${target} INTERFACE
      ${upper}_WEIGHTS_PATH="${weights}")
  endif()
endfunction()
