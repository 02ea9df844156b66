# Options that change how fast imgspool builds, never what it does. All off by default: a
# developer's build is the plain one; scripts/test.sh turns them on for CI.
#
# IMGSPOOL_LINE_TABLES_ONLY: debug information reduced to functions and line tables (-g1), which
#   is what a sanitizer report or a backtrace needs to give file:line for every frame; no
#   variables or types, so it compiles and links faster than -g. For builds that exist to run the
#   tests (the sanitizer builds in scripts/test.sh), not for a debugger.
# IMGSPOOL_TEST_PCH: the test programs share one precompiled <gtest/gtest.h>, which every test
#   file includes and which costs seconds to parse in each. With ccache, set its sloppiness to
#   pch_defines,time_macros (scripts/test.sh does) or it will not cache those files.
option(IMGSPOOL_LINE_TABLES_ONLY "Debug information: line tables only (-g1)" OFF)
option(IMGSPOOL_TEST_PCH "Precompile <gtest/gtest.h> once for all test programs" OFF)

if(IMGSPOOL_LINE_TABLES_ONLY)
  # After CMAKE_CXX_FLAGS_<CONFIG>'s -g on the command line, so it wins.
  add_compile_options(-g1)
endif()

# Every executable target defined in `dir` and below.
function(_imgspool_executables_under dir out)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  set(found "")
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "EXECUTABLE")
      list(APPEND found ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _imgspool_executables_under("${sub}" below)
    list(APPEND found ${below})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

# Called once the tests are defined: gives each test program under `dir` the shared header.
function(imgspool_precompile_test_headers dir)
  if(NOT IMGSPOOL_TEST_PCH)
    return()
  endif()
  # The header is compiled once, in this target, with the flags every target shares (the
  # global ones); the test programs reuse it. GCC checks that it fits each use (CMake adds
  # -Winvalid-pch, an error under -Werror, so a PCH that does not fit cannot pass unnoticed).
  # (CONFIGURE writes only when the text changes: a new timestamp would rebuild every test.)
  file(CONFIGURE OUTPUT "${CMAKE_BINARY_DIR}/imgspool_test_pch.cpp"
       CONTENT "// the precompiled header's own target\n")
  add_library(imgspool_test_pch STATIC "${CMAKE_BINARY_DIR}/imgspool_test_pch.cpp")
  # -pthread everywhere: libvips' flags bring it (and with it _REENTRANT) to some test programs,
  # and a PCH made without _REENTRANT is refused where it is defined. At compile time -pthread
  # only defines that macro, and glibc reads it only to raise the POSIX level to one that
  # _GNU_SOURCE (always on for C++) already exceeds: no test compiles differently.
  target_compile_options(imgspool_test_pch PRIVATE -pthread)
  target_link_libraries(imgspool_test_pch PRIVATE GTest::gtest)
  target_precompile_headers(imgspool_test_pch PRIVATE <gtest/gtest.h>)
  _imgspool_executables_under("${dir}" programs)
  foreach(t IN LISTS programs)
    target_compile_options(${t} PRIVATE -pthread)
    target_precompile_headers(${t} REUSE_FROM imgspool_test_pch)
  endforeach()
endfunction()
