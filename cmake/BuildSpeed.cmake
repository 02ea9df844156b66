# Options that change how fast imgspool builds, never what it does. Off by default: a
# developer's build is the plain one; scripts/test.sh turns them on for CI.
#
# IMGSPOOL_LINE_TABLES_ONLY: debug information reduced to functions and line tables (-g1), which
#   is what a sanitizer report or a backtrace needs to give file:line for every frame; no
#   variables or types, so it compiles and links faster than -g. For builds that exist to run the
#   tests (the sanitizer builds in scripts/test.sh), not for a debugger.
# (A precompiled <gtest/gtest.h> for the test programs was tried and dropped: GCC 12 then reports
# -Warray-bounds false positives in std::string code of several tests, errors under -Werror.)
option(IMGSPOOL_LINE_TABLES_ONLY "Debug information: line tables only (-g1)" OFF)

if(IMGSPOOL_LINE_TABLES_ONLY)
  # After CMAKE_CXX_FLAGS_<CONFIG>'s -g on the command line, so it wins.
  add_compile_options(-g1)
endif()
