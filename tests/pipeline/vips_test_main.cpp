// gtest main for the tests that need libvips: starts it once, as the daemon does.
#include <gtest/gtest.h>

#include <iostream>

#include "pipeline/render.hpp"

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (imgspool::Status started = imgspool::init_vips(argv[0]); !started) {
        std::cerr << started.error().message() << "\n";
        return 1;
    }
    return RUN_ALL_TESTS();
}
