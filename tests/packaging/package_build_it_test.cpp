// scripts/package.sh makes the Debian package from this build folder (no second build), named
// after the project version and the machine's architecture. The other packaging tests use the
// .deb it leaves in deb_dir() (ctest fixture imgspool_deb).
#include <gtest/gtest.h>

#include <chrono>

#include "tests/packaging/deb_support.hpp"

using namespace imgspool::pkg_test;

TEST(PackageBuild, PackageShBuildsTheDebFromThisBuildFolder) {
    std::filesystem::remove_all(deb_dir());
    const auto started = std::chrono::steady_clock::now();
    ShellResult built =
        shell("bash '" + (source_dir() / "scripts/package.sh").string() + "' --build-dir '" +
              build_dir().string() + "' --out-dir '" + deb_dir().string() + "'");
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    ASSERT_EQ(built.status, 0) << built.output;
    RecordProperty("package_sh_seconds", std::to_string(seconds.count()));
    std::printf("package.sh took %.1f s\n", seconds.count());

    ShellResult arch = shell("dpkg --print-architecture");
    ASSERT_EQ(arch.status, 0) << arch.output;
    arch.output.pop_back();  // the newline
    // The Debian revision (-1, -2, ...) comes from packaging/changelog.
    const std::string prefix = "imgspool_" + project_version() + "-";
    const std::string suffix = "_" + arch.output + ".deb";
    std::filesystem::path deb = built_deb();
    ASSERT_FALSE(deb.empty()) << "no single .deb in " << deb_dir() << "\n" << built.output;
    const std::string name = deb.filename().string();
    EXPECT_TRUE(name.starts_with(prefix) && name.ends_with(suffix)) << name;
    // The script's last line on stdout is the package's path.
    EXPECT_NE(built.output.find(deb.string() + "\n"), std::string::npos) << built.output;
}
