// The package installed on this machine with dpkg -i (systemd installed, not running): the
// binary, the user and groups from sysusers.d, the folders from tmpfiles.d with their owners
// and modes, a config that passes check-config; a second install and an upgrade keep the
// administrator's edits of the conffile; purge removes what the package made, never uploads.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "tests/integration/spool_fixture.hpp"
#include "tests/packaging/installed_package.hpp"
#include "tests/store/temp_dir.hpp"

using namespace imgspool::pkg_test;
namespace stdfs = std::filesystem;

namespace {

const stdfs::path kConffile = "/etc/imgspool/imgspool.toml";
const stdfs::path kSpool = "/var/spool/imgspool/default";

std::string dpkg_status() {
    return shell("dpkg-query -W -f '${Status} ${Version}' imgspool 2>/dev/null").output;
}

}  // namespace

TEST_F(InstalledPackage, MakesTheUserGroupsFoldersAndAValidConfig) {
    ShellResult version = shell("/usr/bin/imgspool --version");
    EXPECT_EQ(version.status, 0);
    EXPECT_EQ(version.output, "imgspool " + project_version() + "\n");

    // A system user (uid below 1000) that cannot log in, at home in the state folder.
    ShellResult user = shell("getent passwd imgspool");
    ASSERT_EQ(user.status, 0) << "no user imgspool";
    EXPECT_NE(user.output.find(":/var/lib/imgspool:/usr/sbin/nologin\n"), std::string::npos)
        << user.output;
    ShellResult uid = shell("id -u imgspool");
    EXPECT_LT(std::atoi(uid.output.c_str()), 1000) << uid.output;
    EXPECT_EQ(shell("getent group imgspool").status, 0) << "no group imgspool";
    EXPECT_EQ(shell("getent group imgspool-drop").status, 0) << "no group imgspool-drop";
    // imgspool reads what uploaders leave in an inbox through imgspool-drop.
    EXPECT_EQ(shell("id -gn imgspool").output, "imgspool\n");
    EXPECT_EQ(shell("id -Gn imgspool").output, "imgspool imgspool-drop\n");

    const std::map<stdfs::path, std::string> expected{
        {"/var/lib/imgspool", "imgspool:imgspool 750"},
        {"/var/lib/imgspool/objects", "imgspool:imgspool 750"},
        {"/var/spool/imgspool", "root:root 755"},
        {kSpool, "root:root 755"},
        {kSpool / "inbox", "imgspool:imgspool-drop 2770"},
        {kSpool / "work", "imgspool:imgspool 750"},
        {kSpool / "done", "imgspool:imgspool 750"},
        {kSpool / "failed", "imgspool:imgspool 750"},
        {kSpool / ".imgspool.lock", "imgspool:imgspool 640"},
        {kConffile, "root:root 644"},
    };
    std::map<stdfs::path, std::string> actual;
    for (const auto& [path, _] : expected) actual[path] = owner_and_mode(path);
    EXPECT_EQ(actual, expected);

    ShellResult check = shell("/usr/bin/imgspool check-config -c " + kConffile.string());
    EXPECT_EQ(check.status, 0) << check.output;
    EXPECT_NE(check.output.find("/var/spool/imgspool/default"), std::string::npos) << check.output;
    EXPECT_NE(check.output.find("/var/lib/imgspool/objects"), std::string::npos) << check.output;

    // Enabled for the next boot with systemd (symlink made by deb-systemd-helper).
    EXPECT_TRUE(stdfs::is_symlink("/etc/systemd/system/multi-user.target.wants/imgspool.service"));
    EXPECT_EQ(dpkg_status(), "install ok installed " + deb_version(deb()));
}

TEST_F(InstalledPackage, ReinstallAndUpgradeKeepAnEditedConffile) {
    std::string edited = imgspool::it::read_file(kConffile);
    const std::string from = "settle_ms = 2000";
    ASSERT_NE(edited.find(from), std::string::npos);
    edited.replace(edited.find(from), from.size(), "settle_ms = 1500");
    edited += "# edited by the administrator\n";
    imgspool::it::write_file(kConffile, edited);

    // The same version again (postinst configure with the old version: the restart path).
    ShellResult again = install_package(deb());
    ASSERT_EQ(again.status, 0) << again.output;
    EXPECT_EQ(imgspool::it::read_file(kConffile), edited);

    // An upgrade: the same package under a higher Debian revision.
    imgspool::test::TempDir temp;
    const stdfs::path& dir = temp.path();
    ShellResult repacked =
        shell("cd " + dir.string() + " && dpkg-deb -R '" + deb().string() + "' tree && " +
              "sed -i 's/^Version: \\(.*\\)-\\([0-9]*\\)$/Version: \\1-\\2+upgrade1/' "
              "tree/DEBIAN/control && grep '^Version:' tree/DEBIAN/control && "
              "dpkg-deb --root-owner-group -b tree upgrade.deb >/dev/null");
    ASSERT_EQ(repacked.status, 0) << repacked.output;
    ShellResult upgraded = install_package(dir / "upgrade.deb");
    ASSERT_EQ(upgraded.status, 0) << upgraded.output;
    EXPECT_EQ(dpkg_status(), "install ok installed " + deb_version(deb()) + "+upgrade1");
    EXPECT_EQ(imgspool::it::read_file(kConffile), edited);
    ShellResult check = shell("/usr/bin/imgspool check-config -c " + kConffile.string());
    EXPECT_EQ(check.status, 0) << check.output;
}

TEST_F(InstalledPackage, PurgeRemovesWhatThePackageMadeButKeepsUploads) {
    // A processed original and a job database, as a daemon would have left them.
    imgspool::it::write_file(kSpool / "done/kept.jpg", "not really a jpeg");
    imgspool::it::write_file("/var/lib/imgspool/imgspool.db", "a job record");

    ShellResult purged = shell("dpkg --purge imgspool");
    ASSERT_EQ(purged.status, 0) << purged.output;
    EXPECT_EQ(dpkg_status().find("installed"), std::string::npos) << dpkg_status();
    for (const char* gone :
         {"/usr/bin/imgspool", "/etc/imgspool", "/lib/systemd/system/imgspool.service",
          "/usr/lib/sysusers.d/imgspool.conf", "/usr/lib/tmpfiles.d/imgspool.conf",
          "/var/spool/imgspool/default/.imgspool.lock", "/var/spool/imgspool/default/inbox",
          "/var/spool/imgspool/default/work", "/var/spool/imgspool/default/failed",
          "/var/lib/imgspool/objects",
          "/etc/systemd/system/multi-user.target.wants/imgspool.service"}) {
        EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(gone))) << gone;
    }
    EXPECT_EQ(imgspool::it::read_file(kSpool / "done/kept.jpg"), "not really a jpeg");
    EXPECT_EQ(imgspool::it::read_file("/var/lib/imgspool/imgspool.db"), "a job record");
    // Files may still belong to them: Debian keeps system users on purge.
    EXPECT_EQ(shell("getent passwd imgspool").status, 0);
}
