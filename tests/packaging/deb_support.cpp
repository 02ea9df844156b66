#include "tests/packaging/deb_support.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace imgspool::pkg_test {

namespace stdfs = std::filesystem;

ShellResult shell(const std::string& command) {
    std::string wrapped = "exec 2>&1 </dev/null; " + command;
    auto closer = [](FILE* f) { return ::pclose(f); };
    std::unique_ptr<FILE, decltype(closer)> pipe(::popen(wrapped.c_str(), "r"), closer);
    if (!pipe) throw std::runtime_error("popen failed for: " + command);
    ShellResult result;
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) {
        result.output.append(buffer.data(), n);
    }
    int raw = ::pclose(pipe.release());
    result.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
    return result;
}

stdfs::path deb_dir() {
    return IMGSPOOL_DEB_DIR;
}
stdfs::path source_dir() {
    return IMGSPOOL_SOURCE_DIR;
}
stdfs::path build_dir() {
    return IMGSPOOL_BUILD_DIR;
}
std::string project_version() {
    return IMGSPOOL_PROJECT_VERSION;
}

stdfs::path built_deb() {
    std::error_code ec;
    stdfs::path found;
    for (const auto& entry : stdfs::directory_iterator(deb_dir(), ec)) {
        if (entry.path().extension() != ".deb") continue;
        if (!found.empty()) return {};
        found = entry.path();
    }
    return found;
}

std::string deb_version(const stdfs::path& deb) {
    std::string version = shell("dpkg-deb -f '" + deb.string() + "' Version").output;
    while (!version.empty() && version.back() == '\n') version.pop_back();
    return version;
}

ShellResult install_package(const stdfs::path& deb) {
    return shell("DEBIAN_FRONTEND=noninteractive dpkg -i '" + deb.string() + "'");
}

void remove_from_machine() {
    // A service started by a running systemd (not on CI) is stopped by prerm; a daemon a test
    // started by hand is the test's own child and already gone.
    shell("dpkg --purge imgspool");
    shell("rm -rf /var/lib/imgspool /var/spool/imgspool /etc/imgspool");
    shell("userdel imgspool; groupdel imgspool; groupdel imgspool-drop");
}

}  // namespace imgspool::pkg_test
