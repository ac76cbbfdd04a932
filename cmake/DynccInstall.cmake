# Install rules of the dyncc package as a whole (included by the top-level
# CMakeLists.txt; the executables and the runtime install themselves):
#
#   <prefix>/lib/cmake/dyncc/  dynccConfig.cmake, dynccConfigVersion.cmake,
#                              dynccTargets.cmake (dyncc::dyncc,
#                              dyncc::dyncc-opt), DynccModel.cmake
#   <prefix>/share/dyncc/python/  the dyncc Python package (pip install it
#                              into an environment with torch-mlir and onnx
#                              for `dyncc import` and the Python API)
include(CMakePackageConfigHelpers)

install(EXPORT dynccTargets
  NAMESPACE dyncc::
  DESTINATION "${DYNCC_INSTALL_CMAKE_DIR}")
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/dynccConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/dynccConfig.cmake"
  INSTALL_DESTINATION "${DYNCC_INSTALL_CMAKE_DIR}"
  PATH_VARS DYNCC_INSTALL_INCLUDE_DIR DYNCC_INSTALL_RUNTIME_DIR)
# The generated code has a versioned ABI (dynrt.h): a project asks for the
# same minor version it was written for.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/dynccConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/dynccConfig.cmake"
  "${PROJECT_BINARY_DIR}/dynccConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/DynccModel.cmake"
  DESTINATION "${DYNCC_INSTALL_CMAKE_DIR}")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/python/dyncc"
  DESTINATION "${DYNCC_INSTALL_PYTHON_DIR}"
  PATTERN __pycache__ EXCLUDE)
install(FILES "${PROJECT_SOURCE_DIR}/python/pyproject.toml"
  "${PROJECT_SOURCE_DIR}/python/requirements.txt"
  DESTINATION "${DYNCC_INSTALL_PYTHON_DIR}")
