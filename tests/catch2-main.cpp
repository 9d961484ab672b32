// Catch2's main(), compiled from the v2 header for builds where Debian's prebuilt
// libCatch2WithMain.a (host architecture only) cannot be linked: cross builds.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
