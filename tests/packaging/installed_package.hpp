// A test fixture that installs the built .deb on this machine with dpkg -i and purges it (and
// what it made) afterwards. For the `system` tests only: they own the package's paths, the
// user imgspool and the groups imgspool and imgspool-drop on the (disposable) machine.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/packaging/deb_support.hpp"

namespace imgspool::pkg_test {

class InstalledPackage : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    const std::filesystem::path& deb() const { return deb_; }

  private:
    std::filesystem::path deb_;
};

// "user:group mode" of a path (mode in octal, e.g. "imgspool:imgspool-drop 2770"), or
// "missing".
std::string owner_and_mode(const std::filesystem::path& path);

}  // namespace imgspool::pkg_test
