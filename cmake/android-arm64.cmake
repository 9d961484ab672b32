# Android phones (arm64-v8a, API 28+) with the NDK (r26 or later): a thin wrapper over the
# NDK's own toolchain file, which does the real work. Use:
#   cmake -B build-android --toolchain cmake/android-arm64.cmake -DANDROID_NDK=/path/to/ndk \
#         --preset embedded    (or any options; see docs/mobile.md)
# Not tested in CI: no NDK is installable on the CI machine (the aarch64-linux-gnu build
# and its qemu runs cover the same NEON code and dispatch).
if(NOT ANDROID_NDK)
  if(DEFINED ENV{ANDROID_NDK_HOME})
    set(ANDROID_NDK "$ENV{ANDROID_NDK_HOME}")
  elseif(DEFINED ENV{ANDROID_NDK_ROOT})
    set(ANDROID_NDK "$ENV{ANDROID_NDK_ROOT}")
  endif()
endif()
if(NOT ANDROID_NDK OR NOT EXISTS "${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  message(FATAL_ERROR "android-arm64.cmake: set -DANDROID_NDK=<NDK r26+ folder> or ANDROID_NDK_HOME")
endif()
set(ANDROID_NDK "${ANDROID_NDK}" CACHE PATH "Android NDK folder" FORCE)

set(ANDROID_ABI arm64-v8a CACHE STRING "Android ABI")
set(ANDROID_PLATFORM android-28 CACHE STRING "Lowest Android API level")
set(ANDROID_STL c++_static CACHE STRING "libc++ linked into libxent / the app's .so")
# 16 KiB pages (Android 15+ devices) need 16 KiB-aligned ELF segments.
set(ANDROID_SUPPORT_FLEXIBLE_PAGE_SIZES ON CACHE BOOL "")
include("${ANDROID_NDK}/build/cmake/android.toolchain.cmake")

# The NDK ships no nlohmann-json or CLI11. Install their headers into a prefix of their own
# (not the host's /usr/include, which holds glibc's headers) and name it here; the NDK's
# toolchain searches packages only below CMAKE_FIND_ROOT_PATH.
set(XENT_ANDROID_DEPS "" CACHE PATH "Prefix with nlohmann-json (and CLI11) for the target")
if(XENT_ANDROID_DEPS)
  list(APPEND CMAKE_FIND_ROOT_PATH "${XENT_ANDROID_DEPS}")
endif()
