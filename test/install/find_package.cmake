# install.find-package (test/install/CMakeLists.txt), run with cmake -P:
# installs the build tree, moves the prefix (dyncc finds its files relative
# to itself), then builds and tests test/install/project against it with
# find_package(dyncc) and without fmt. Everything is written under WORK_DIR.
foreach(var BUILD_DIR WORK_DIR PROJECT_DIR GENERATOR CTEST)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "find_package.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "failed (${rc}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(staging "${WORK_DIR}/staging")
set(prefix "${WORK_DIR}/prefix")
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${staging}" ${config_args})
file(RENAME "${staging}" "${prefix}")

foreach(file bin/dyncc lib/cmake/dyncc/dynccConfig.cmake
        lib/cmake/dyncc/dynccConfigVersion.cmake include/dyncc/dynrt.h)
  if(NOT EXISTS "${prefix}/${file}")
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()

run("${CTEST}" --build-and-test "${PROJECT_DIR}" "${WORK_DIR}/project"
  --build-generator "${GENERATOR}"
  --build-options
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DDYNCC_TEST_PREFIX=${prefix}"
    -DCMAKE_DISABLE_FIND_PACKAGE_fmt=ON
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_BUILD_TYPE=Release
  --test-command "${CTEST}" --output-on-failure)
