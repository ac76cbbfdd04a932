# dyncc_add_model: compile a model with dyncc as part of a CMake build.
#
#   include(path/to/dyncc/cmake/DynccModel.cmake)
#   dyncc_add_model(<target> SOURCE <model.mlir>
#                   [WEIGHTS <file.safetensors>]  # defines <TARGET>_WEIGHTS_PATH
#                   [KERNEL_TARGET host|generic|<halide target>]
#                   [NAME <c identifier>])        # default: <target>
#   target_link_libraries(app PRIVATE <target>)
#
# <target> is an INTERFACE library: linking it adds the generated
# lib<name>.a (model, libdynrt and Halide runtime inside), the directory of
# <name>.h and dynrt.h, and the system libraries they need. The model is
# recompiled when the .mlir file or dyncc changes.
#
# The dyncc executable: DYNCC_EXECUTABLE (cache variable), else the `dyncc`
# target of this build, else `dyncc` on PATH.

function(dyncc_add_model target)
  cmake_parse_arguments(ARG "" "SOURCE;WEIGHTS;KERNEL_TARGET;NAME" "" ${ARGN})
  if(NOT ARG_SOURCE)
    message(FATAL_ERROR "dyncc_add_model(${target}): SOURCE is required")
  endif()
  if(NOT ARG_NAME)
    set(ARG_NAME "${target}")
  endif()
  if(NOT ARG_KERNEL_TARGET)
    set(ARG_KERNEL_TARGET host)
  endif()
  get_filename_component(source "${ARG_SOURCE}" ABSOLUTE)

  if(DYNCC_EXECUTABLE)
    set(dyncc "${DYNCC_EXECUTABLE}")
    set(dyncc_dep "${DYNCC_EXECUTABLE}")
  elseif(TARGET dyncc)
    set(dyncc "$<TARGET_FILE:dyncc>")
    set(dyncc_dep dyncc)
  else()
    find_program(DYNCC_FOUND_EXECUTABLE dyncc REQUIRED)
    set(dyncc "${DYNCC_FOUND_EXECUTABLE}")
    set(dyncc_dep "${DYNCC_FOUND_EXECUTABLE}")
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/dyncc/${target}")
  set(lib "${out_dir}/lib${ARG_NAME}.a")
  add_custom_command(
    OUTPUT "${lib}" "${out_dir}/${ARG_NAME}.h" "${out_dir}/dynrt.h"
    COMMAND "${dyncc}" compile "${source}" -o "${out_dir}/${ARG_NAME}"
            --target=${ARG_KERNEL_TARGET}
    DEPENDS "${source}" ${dyncc_dep}
    COMMENT "dyncc: compiling ${ARG_SOURCE}"
    VERBATIM)
  add_custom_target(${target}_dyncc DEPENDS "${lib}")

  find_package(Threads REQUIRED)
  find_package(fmt REQUIRED)
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_dyncc)
  target_include_directories(${target} INTERFACE "${out_dir}")
  target_link_libraries(${target} INTERFACE
    "${lib}" fmt::fmt Threads::Threads ${CMAKE_DL_LIBS} stdc++ m)
  if(ARG_WEIGHTS)
    get_filename_component(weights "${ARG_WEIGHTS}" ABSOLUTE)
    string(TOUPPER "${ARG_NAME}" upper)
    target_compile_definitions(${target} INTERFACE
      ${upper}_WEIGHTS_PATH="${weights}")
  endif()
endfunction()
