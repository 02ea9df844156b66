#include "tests/packaging/installed_package.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cstdio>

namespace imgspool::pkg_test {

void InstalledPackage::SetUp() {
    deb_ = built_deb();
    ASSERT_FALSE(deb_.empty()) << "no .deb in " << deb_dir() << " (package_build_it_test)";
    remove_from_machine();
    ShellResult installed = install_package(deb_);
    ASSERT_EQ(installed.status, 0) << installed.output;
}

void InstalledPackage::TearDown() {
    remove_from_machine();
}

std::string owner_and_mode(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "missing";
    const passwd* user = ::getpwuid(st.st_uid);
    std::string out = user ? user->pw_name : std::to_string(st.st_uid);
    const group* grp = ::getgrgid(st.st_gid);
    out += ":" + (grp ? std::string(grp->gr_name) : std::to_string(st.st_gid));
    char mode[16];
    std::snprintf(mode, sizeof(mode), " %o", st.st_mode & 07777);
    return out + mode;
}

}  // namespace imgspool::pkg_test
