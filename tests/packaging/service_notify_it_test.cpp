// The installed unit's ExecStart line, run by hand the way systemd would run it: as the unit's
// User= and Group= (setpriv), with NOTIFY_SOCKET pointing at a datagram socket the test binds.
// The daemon says READY=1 once its watchers are armed (a file dropped right after is done well
// before the first rescan could have found it), processes the drop in the packaged spool as
// imgspool after an administrator ran check-config as root, and answers SIGTERM with
// STOPPING=1 and exit 0. The notify protocol itself is daemon/service_notifier (issue 11).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <sstream>

#include "tests/integration/daemon_process.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/packaging/installed_package.hpp"
#include "tests/packaging/notify_socket.hpp"
#include "tests/store/temp_dir.hpp"

using namespace imgspool::pkg_test;
using namespace std::chrono_literals;
namespace it = imgspool::it;
namespace stdfs = std::filesystem;

namespace {

const stdfs::path kUnit = "/lib/systemd/system/imgspool.service";
const stdfs::path kSpool = "/var/spool/imgspool/default";

// The value of the unit's `key=` line in [Service] (the last one wins, as in systemd).
std::string unit_value(const std::string& unit, const std::string& key) {
    std::istringstream lines(unit);
    std::string value;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with(key + "=")) value = line.substr(key.size() + 1);
    }
    return value;
}

// ExecStart's words, without systemd's prefixes ("-", "@", ":", "+", "!") on the command.
std::vector<std::string> exec_start_words(const std::string& exec_start) {
    std::string command = exec_start;
    while (!command.empty() &&
           std::string_view("-@:+!").find(command.front()) != std::string::npos) {
        command.erase(0, 1);
    }
    std::istringstream words(command);
    std::vector<std::string> out;
    for (std::string word; words >> word;) out.push_back(word);
    return out;
}

}  // namespace

TEST_F(InstalledPackage, ExecStartAsTheUnitsUserNotifiesReadyProcessesADropAndStops) {
    const std::string unit = it::read_file(kUnit);
    const std::string user = unit_value(unit, "User");
    const std::string group = unit_value(unit, "Group");
    EXPECT_EQ(user, "imgspool");
    const std::vector<std::string> command = exec_start_words(unit_value(unit, "ExecStart"));
    ASSERT_GE(command.size(), 2u) << unit;
    EXPECT_EQ(command[0], "/usr/bin/imgspool");
    EXPECT_EQ(command[1], "run");

    // Where systemd is running, postinst started the service: this test runs its own.
    if (stdfs::is_directory("/run/systemd/system")) shell("systemctl stop imgspool.service");
    // What an administrator does first, as root: it must leave nothing the daemon cannot use.
    ShellResult check = shell("/usr/bin/imgspool check-config -c /etc/imgspool/imgspool.toml");
    ASSERT_EQ(check.status, 0) << check.output;

    imgspool::test::TempDir temp;
    const stdfs::path& dir = temp.path();
    ASSERT_EQ(::chmod(dir.c_str(), 0711), 0);  // the daemon's user reaches the socket
    NotifySocket notify(dir / "notify.sock");

    std::vector<std::string> args{"--reuid",       user, "--regid", group.empty() ? user : group,
                                  "--init-groups", "--"};
    args.insert(args.end(), command.begin(), command.end());
    it::ChildProcess daemon("/usr/bin/setpriv", args, dir / "daemon.out", dir / "daemon.log",
                            {"NOTIFY_SOCKET=" + notify.path().string()});
    auto log = [&] { return it::read_file(dir / "daemon.log"); };

    ASSERT_TRUE(notify.wait_for_line("READY=1", 30s)) << "received:\n"
                                                      << notify.describe() << "daemon log:\n"
                                                      << log();

    // A drop as an uploader leaves it: group imgspool-drop (the inbox's setgid bit), mode 0640,
    // written under a dot name and renamed in.
    const stdfs::path hidden = kSpool / "inbox/.photo.jpg.part";
    it::write_file(hidden, it::make_jpeg({.width = 800, .height = 600}));
    ASSERT_EQ(::chmod(hidden.c_str(), 0640), 0);
    stdfs::rename(hidden, kSpool / "inbox/photo.jpg");
    // settle_ms is 2 s, the first rescan 30 s after the start: only an armed watcher is this fast.
    EXPECT_TRUE(
        it::SpoolFixture::wait_for([&] { return stdfs::exists(kSpool / "done/photo.jpg"); }, 15s))
        << "daemon log:\n"
        << log();
    EXPECT_FALSE(it::SpoolFixture::files_under("/var/lib/imgspool/objects").empty());

    daemon.send(SIGTERM);
    EXPECT_TRUE(notify.wait_for_line("STOPPING=1", 30s)) << "received:\n"
                                                         << notify.describe() << "daemon log:\n"
                                                         << log();
    auto exit = daemon.wait_for_exit(60s);
    ASSERT_TRUE(exit.has_value()) << "still running after SIGTERM\n" << log();
    EXPECT_TRUE(exit->exited && exit->code == 0) << exit->describe() << "\n" << log();
    std::printf("notifications:\n%s", notify.describe().c_str());
}
