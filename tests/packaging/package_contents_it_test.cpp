// The built .deb read back with dpkg-deb and judged by lintian: every file issue 11 asks for,
// with root ownership and the right modes, Depends computed from the binary's libraries,
// /etc/imgspool/imgspool.toml as a conffile, and no lintian errors.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "tests/packaging/deb_support.hpp"

using namespace imgspool::pkg_test;

namespace {

class PackageContents : public ::testing::Test {
  protected:
    void SetUp() override {
        deb_ = built_deb();
        ASSERT_FALSE(deb_.empty()) << "no .deb in " << deb_dir() << " (package_build_it_test)";
    }
    // dpkg-deb OPTION DEB [ARGS]: e.g. ("-f", "Depends"), ("-I", "conffiles").
    ShellResult dpkg_deb(const std::string& option, const std::string& args = "") {
        return shell("dpkg-deb " + option + " '" + deb_.string() + "' " + args);
    }
    std::filesystem::path deb_;
};

}  // namespace

TEST_F(PackageContents, ListsEveryFileOwnedByRootWithItsMode) {
    ShellResult listing = dpkg_deb("-c");
    ASSERT_EQ(listing.status, 0) << listing.output;
    std::printf("%s", listing.output.c_str());

    // path -> "mode owner/group" of every regular file.
    std::map<std::string, std::string> files;
    std::istringstream lines(listing.output);
    std::string mode, owner, size, date, time, path;
    while (lines >> mode >> owner >> size >> date >> time >> path) {
        if (mode.starts_with("-")) files[path] = mode + " " + owner;
        std::string rest;
        std::getline(lines, rest);  // " -> target" of a link
    }
    const std::string data = "-rw-r--r-- root/root";
    const std::map<std::string, std::string> expected{
        {"./usr/bin/imgspool", "-rwxr-xr-x root/root"},
        {"./etc/imgspool/imgspool.toml", data},
        {"./lib/systemd/system/imgspool.service", data},
        {"./usr/lib/sysusers.d/imgspool.conf", data},
        {"./usr/lib/tmpfiles.d/imgspool.conf", data},
        {"./usr/share/man/man1/imgspool.1.gz", data},
        {"./usr/share/man/man5/imgspool.toml.5.gz", data},
        {"./usr/share/doc/imgspool/README.md", data},
        {"./usr/share/doc/imgspool/README.Debian", data},
        {"./usr/share/doc/imgspool/docs/s3.md", data},
        {"./usr/share/doc/imgspool/docs/queries.md", data},
        {"./usr/share/doc/imgspool/copyright", data},
        {"./usr/share/doc/imgspool/changelog.Debian.gz", data},
        {"./usr/share/doc/imgspool/examples/sshd-imgspool-drop.conf", data},
        {"./usr/share/doc/imgspool/examples/s3.env", data},
    };
    EXPECT_EQ(files, expected);
}

TEST_F(PackageContents, ControlHasTheVersionLibraryDependsAndTheConffile) {
    ShellResult version = dpkg_deb("-f", "Version");
    ASSERT_EQ(version.status, 0) << version.output;
    EXPECT_TRUE(version.output.starts_with(project_version() + "-")) << version.output;

    ShellResult depends = dpkg_deb("-f", "Depends");
    ASSERT_EQ(depends.status, 0) << depends.output;
    // From dpkg-shlibdeps: the libraries the binary links, with versions.
    for (const char* package :
         {"libc6 (>=", "libvips42 (", "libsqlite3-0 (>=", "libcurl4 (>=", "libssl3 (>=",
          "libmicrohttpd12 (>=", "libinotifytools0 (>=", "libuuid1 (>="}) {
        EXPECT_NE(depends.output.find(package), std::string::npos)
            << package << " in " << depends.output;
    }
    // postinst runs systemd-sysusers and systemd-tmpfiles.
    EXPECT_NE(depends.output.find(", systemd"), std::string::npos) << depends.output;

    ShellResult conffiles = dpkg_deb("-I", "conffiles");
    ASSERT_EQ(conffiles.status, 0) << conffiles.output;
    EXPECT_EQ(conffiles.output, "/etc/imgspool/imgspool.toml\n");

    for (const char* script : {"postinst", "prerm", "postrm"}) {
        ShellResult text = dpkg_deb("-I", script);
        ASSERT_EQ(text.status, 0) << script << ": " << text.output;
        EXPECT_TRUE(text.output.starts_with("#!/bin/sh\n")) << script;
    }
}

TEST_F(PackageContents, LintianReportsNoErrors) {
    ShellResult lintian =
        shell("lintian --tag-display-limit 0 --display-info '" + deb_.string() + "'");
    std::printf("lintian:\n%s", lintian.output.c_str());
    std::istringstream lines(lintian.output);
    std::string errors;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("E: ")) errors += line + "\n";
    }
    EXPECT_EQ(errors, "");
    // lintian exits non-zero on errors (and on its own failures).
    EXPECT_EQ(lintian.status, 0) << lintian.output;
}
