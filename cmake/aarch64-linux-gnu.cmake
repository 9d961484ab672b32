# Cross-compiling for 64-bit ARM Linux (boards, servers, Linux phones) with Debian's
# g++-aarch64-linux-gnu. Use: cmake -B build-aarch64 --toolchain cmake/aarch64-linux-gnu.cmake
# Tests run through qemu-user (set CMAKE_CROSSCOMPILING_EMULATOR; see scripts/ci-aarch64.sh).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(XENT_CROSS_PREFIX "aarch64-linux-gnu-" CACHE STRING "Prefix of the cross compiler's tools")
set(CMAKE_C_COMPILER ${XENT_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${XENT_CROSS_PREFIX}g++)

# Target libraries come from the aarch64 sysroot only. Packages are searched on the host
# as well: the ones xent uses from Debian (nlohmann-json, CLI11, Catch2's headers and
# CMake module) are header-only and architecture-independent. Nothing compiled for the
# host may be linked (tests/CMakeLists.txt builds Catch2's main itself when cross).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
