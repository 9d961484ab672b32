# `cmake --install`: xent.h, libxent.so (SONAME libxent.so.0) and libxent.a, a pkg-config
# file and a CMake package (xent::xent shared, xent::xent_static), all relocatable.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# ---- what a consumer of the static library must link -----------------------------
# libxent.a carries none of its dependencies, so they are collected here from what
# xent_obj links (OpenMP, a GPU runtime when built) and written out as plain linker
# arguments (-lgomp, -L<dir> -lvulkan): valid on the consumer's machine too, unlike the
# imported targets of this build, and the same for CMake and pkg-config.
set(_xent_implicit_dirs ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES} ${CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES})

function(_xent_add_link_item item out_var)
  set(_items ${${out_var}})
  if(item MATCHES "^\\$<LINK_ONLY:(.*)>$")
    set(item "${CMAKE_MATCH_1}")
  endif()
  # A backend's CMakeLists imports its package (Vulkan::Vulkan, CUDA::cudart_static) in
  # its own directory, where the target stays; import it here too to read it.
  if(item MATCHES "^([A-Za-z0-9_]+)::" AND NOT TARGET ${item})
    set(_package "${CMAKE_MATCH_1}")
    if(_package STREQUAL "CUDA")
      set(_package CUDAToolkit)
    endif()
    find_package(${_package} QUIET)
    if(NOT TARGET ${item})
      message(WARNING "xent install: cannot resolve ${item}; xent.pc and xent::xent_static will lack it")
      set(item "")
    endif()
  endif()
  if(item STREQUAL "" OR item MATCHES "^\\$<" OR item MATCHES "^::@" OR item MATCHES "^nlohmann_json")
    # nlohmann_json is header-only and used only inside; ::@ marks the directory a
    # dependency was added from; other generator expressions (compile-only usage
    # requirements) do not concern the link.
  elseif(TARGET ${item})
    get_target_property(_aliased ${item} ALIASED_TARGET)
    if(_aliased)
      set(item ${_aliased})
    endif()
    get_target_property(_type ${item} TYPE)
    get_target_property(_imported ${item} IMPORTED)
    if(_imported AND NOT _type STREQUAL "INTERFACE_LIBRARY")
      set(_loc "")
      foreach(_prop IMPORTED_LOCATION_RELEASE IMPORTED_LOCATION_RELWITHDEBINFO IMPORTED_LOCATION
                    IMPORTED_LOCATION_NOCONFIG IMPORTED_LOCATION_DEBUG)
        get_target_property(_l ${item} ${_prop})
        if(_l AND NOT _loc)
          set(_loc "${_l}")
        endif()
      endforeach()
      if(_loc)
        _xent_add_link_item("${_loc}" _items)
      endif()
    endif()
    if(_imported OR _type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(_deps ${item} INTERFACE_LINK_LIBRARIES)
      if(_deps)
        foreach(_d ${_deps})
          _xent_add_link_item("${_d}" _items)
        endforeach()
      endif()
    endif()
  elseif(IS_ABSOLUTE "${item}" AND item MATCHES "/lib([^/]+)\\.(so[.0-9]*|a)$")
    # /usr/lib/x86_64-linux-gnu/libvulkan.so -> -lvulkan (+ -L<dir> outside the
    # compiler's own search path).
    set(_name "${CMAKE_MATCH_1}")
    get_filename_component(_dir "${item}" DIRECTORY)
    if(NOT _dir IN_LIST _xent_implicit_dirs)
      list(APPEND _items "-L${_dir}")
    endif()
    list(APPEND _items "-l${_name}")
  elseif(item MATCHES "^-")
    list(APPEND _items "${item}")
  else()
    list(APPEND _items "-l${item}")
  endif()
  set(${out_var} ${_items} PARENT_SCOPE)
endfunction()

set(XENT_STATIC_LINK_ITEMS "")
get_target_property(_xent_obj_links xent_obj LINK_LIBRARIES)
get_target_property(_xent_obj_iface xent_obj INTERFACE_LINK_LIBRARIES)
foreach(_item IN LISTS _xent_obj_links _xent_obj_iface)
  if(_item)
    _xent_add_link_item("${_item}" XENT_STATIC_LINK_ITEMS)
  endif()
endforeach()
# CUDA sources in the library bring the CUDA runtime, which CMake adds only when CUDA
# is a link language of the consumer; name it explicitly.
get_target_property(_xent_sources xent_obj SOURCES)
list(FILTER _xent_sources INCLUDE REGEX "\\.cu$")
if(_xent_sources AND CMAKE_CUDA_COMPILER)
  foreach(_dir ${CMAKE_CUDA_IMPLICIT_LINK_DIRECTORIES})
    if(NOT _dir IN_LIST _xent_implicit_dirs AND NOT _dir MATCHES "/stubs$")
      list(APPEND XENT_STATIC_LINK_ITEMS "-L${_dir}")
    endif()
  endforeach()
  if(CMAKE_CUDA_RUNTIME_LIBRARY STREQUAL "Shared")
    list(APPEND XENT_STATIC_LINK_ITEMS -lcudart)
  else()
    list(APPEND XENT_STATIC_LINK_ITEMS -lcudart_static -ldl -lrt -lpthread)
  endif()
endif()
# The C++ runtime, which a C compiler driver does not add by itself (stdc++, m).
foreach(_lib ${CMAKE_CXX_IMPLICIT_LINK_LIBRARIES})
  if(NOT _lib IN_LIST CMAKE_C_IMPLICIT_LINK_LIBRARIES)
    list(APPEND XENT_STATIC_LINK_ITEMS "-l${_lib}")
  endif()
endforeach()
list(APPEND XENT_STATIC_LINK_ITEMS -lm -lpthread)
list(REMOVE_DUPLICATES XENT_STATIC_LINK_ITEMS)

# ---- targets ----------------------------------------------------------------------
target_include_directories(xent_shared INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_include_directories(xent_static INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(xent_static INTERFACE "$<INSTALL_INTERFACE:${XENT_STATIC_LINK_ITEMS}>")
set_target_properties(xent_shared PROPERTIES EXPORT_NAME xent)
set_target_properties(xent_static PROPERTIES EXPORT_NAME xent_static)

set(XENT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/xent)
install(TARGETS xent_shared xent_static EXPORT xentTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/xent.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT xentTargets NAMESPACE xent:: FILE xentTargets.cmake DESTINATION ${XENT_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/xentConfig.cmake.in
  ${PROJECT_BINARY_DIR}/xentConfig.cmake INSTALL_DESTINATION ${XENT_CMAKE_DIR})
# 0.x: a new minor version may change the ABI.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/xentConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/xentConfig.cmake ${PROJECT_BINARY_DIR}/xentConfigVersion.cmake
  DESTINATION ${XENT_CMAKE_DIR})

# pkg-config: paths relative to the .pc file's own folder, so the tree can move.
file(RELATIVE_PATH XENT_PC_PREFIX_FROM_PCDIR /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" XENT_PC_PREFIX_FROM_PCDIR "${XENT_PC_PREFIX_FROM_PCDIR}")
list(JOIN XENT_STATIC_LINK_ITEMS " " XENT_PC_LIBS_PRIVATE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/xent.pc.in ${PROJECT_BINARY_DIR}/xent.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xent.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
