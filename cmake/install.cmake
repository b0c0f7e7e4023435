# Install rules and the exported CMake package `backplane`, found by consumers with
#   find_package(backplane CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE backplane::backplane)
# Included by the top-level CMakeLists.txt when BACKPLANE_INSTALL is on.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BACKPLANE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/backplane"
    CACHE STRING "Where backplaneConfig.cmake is installed, relative to the prefix")

# The installed libraries: a target and the directory that holds its public headers.
# Adding a library is one line here.
set(_backplane_libraries "backplane|${PROJECT_SOURCE_DIR}/backplane/include")
if(TARGET backplane_supervisor)
  list(APPEND _backplane_libraries "backplane_supervisor|${PROJECT_SOURCE_DIR}/supervisor/include")
endif()
if(TARGET backplane_service)
  list(APPEND _backplane_libraries
       "backplane_service|${PROJECT_SOURCE_DIR}/supervisor/service/include")
endif()

# The package config asks for spdlog only when the supervisor is in the package, so that a
# core-only install does not make consumers find a logger they never use.
set(BACKPLANE_PACKAGE_NEEDS_SPDLOG OFF)
# The service links libsystemd (when found at build time) through pkg-config's imported target.
set(BACKPLANE_PACKAGE_HAS_SERVICE OFF)
set(BACKPLANE_PACKAGE_NEEDS_SYSTEMD OFF)
if(TARGET backplane_service)
  set(BACKPLANE_PACKAGE_HAS_SERVICE ON)
  set(BACKPLANE_PACKAGE_NEEDS_SYSTEMD ${BACKPLANE_SERVICE_HAVE_SYSTEMD})
endif()

foreach(_entry IN LISTS _backplane_libraries)
  string(REPLACE "|" ";" _entry "${_entry}")
  list(GET _entry 0 _target)
  list(GET _entry 1 _headers)
  install(TARGETS ${_target}
    EXPORT backplaneTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY "${_headers}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.hpp")
  if(_target STREQUAL "backplane_supervisor")
    set(BACKPLANE_PACKAGE_NEEDS_SPDLOG ON)
  endif()
endforeach()

install(EXPORT backplaneTargets
  NAMESPACE backplane::
  DESTINATION ${BACKPLANE_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/backplaneConfig.cmake.in
  ${PROJECT_BINARY_DIR}/backplaneConfig.cmake
  INSTALL_DESTINATION ${BACKPLANE_INSTALL_CMAKEDIR})
# 0.x: a new minor version may break the API, so only the same minor is compatible.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/backplaneConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/backplaneConfig.cmake
  ${PROJECT_BINARY_DIR}/backplaneConfigVersion.cmake
  DESTINATION ${BACKPLANE_INSTALL_CMAKEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/backplane)
