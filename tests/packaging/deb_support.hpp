// What the packaging tests share: running shell commands, finding the .deb that
// package_build_it_test made from this build, and taking the package off the machine again.
#pragma once

#include <filesystem>
#include <string>

namespace imgspool::pkg_test {

// The exit status of `sh -c command` (-1 when it did not exit normally) and its stdout and
// stderr together.
struct ShellResult {
    int status = -1;
    std::string output;
};
ShellResult shell(const std::string& command);

// Where package_build_it_test puts the package (the only .deb there), and where the sources are.
std::filesystem::path deb_dir();
std::filesystem::path source_dir();
std::filesystem::path build_dir();
// The one .deb in deb_dir(); empty when there is none (or more than one).
std::filesystem::path built_deb();
// The Version field of a .deb (e.g. "0.1.0-1").
std::string deb_version(const std::filesystem::path& deb);
// The project version the build was configured with (the binary's --version).
std::string project_version();

// `dpkg -i` of the built package, non-interactive; the result says how it went.
ShellResult install_package(const std::filesystem::path& deb);

// Purges the package and removes what it and these tests leave on the machine: the state and
// spool folders, /etc/imgspool, the user imgspool and the groups imgspool and imgspool-drop.
// Only for the disposable machines the `system` tests run on.
void remove_from_machine();

}  // namespace imgspool::pkg_test
