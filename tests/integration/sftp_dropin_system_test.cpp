// The SFTP drop-in of the package, end to end on this machine (issue 11): the users and groups
// of packaging/imgspool.sysusers made by systemd-sysusers, a spool built by
// packaging/imgspool.tmpfiles (its paths moved under a test folder), a real sshd on 127.0.0.1
// with packaging/examples/sshd-imgspool-drop.conf included (only its ChrootDirectory moved), an
// uploader in imgspool-drop who puts a JPEG into /inbox with OpenSSH's sftp, and the daemon
// running as user imgspool with CAP_LEASE only, as the unit runs it. The file must reach done/
// and its job be complete, and the uploader must see neither done/ nor work/.
//
// Changes the machine (creates the system users imgspool and imgspool-drop, which stay, and a
// test uploader, which is removed): ctest label `system`, run as root, serially.
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/sshd_server.hpp"

namespace imgspool::it {
namespace {

const stdfs::path kSource = IMGSPOOL_SOURCE_DIR;
const char* const kUploader = "imgspool-it-upl";
// The paths of the package's tmpfiles.d entry, and where this test puts them instead.
const char* const kPackagedSpools = "/var/spool/imgspool";
const char* const kPackagedState = "/var/lib/imgspool";
const char* const kPackagedChroot = "/var/spool/imgspool/default";

struct Outcome {
    ExitStatus status;
    std::string output;  // stdout and stderr together
};

// Runs a program to completion (killed after `timeout`); its output goes through a file in dir.
Outcome run(const stdfs::path& binary, const std::vector<std::string>& args, const stdfs::path& dir,
            std::chrono::milliseconds timeout = 60s) {
    const stdfs::path out = dir / "command.out";
    stdfs::remove(out);
    ChildProcess child(binary, args, out, out);
    std::optional<ExitStatus> st = child.wait_for_exit(timeout);
    if (!st) {
        child.kill_now();
        st = ExitStatus{false, -1, SIGKILL};
    }
    return {*st, read_file(out)};
}

// Replaces each `from` by its `to` in one pass over text, so a replacement is never searched
// again (the test folder's own path starts like the packaged ones).
std::string replace_all(const std::string& text,
                        const std::vector<std::pair<std::string, std::string>>& replacements) {
    std::string out;
    for (size_t at = 0; at < text.size();) {
        bool replaced = false;
        for (const auto& [from, to] : replacements) {
            if (text.compare(at, from.size(), from) == 0) {
                out += to;
                at += from.size();
                replaced = true;
                break;
            }
        }
        if (!replaced) out += text[at++];
    }
    return out;
}

struct stat stat_of(const stdfs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + p.string());
    return st;
}

// `setpriv` arguments that run a command as `user` with its groups (and nothing else).
std::vector<std::string> as_user(const std::string& user, std::vector<std::string> command) {
    std::vector<std::string> args{"--reuid", user, "--regid", user, "--init-groups"};
    args.insert(args.end(), command.begin(), command.end());
    return args;
}

class SftpDropIn : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root: creates users and runs sshd";
        std::string pattern = "/var/lib/imgspool-sftp-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        // sshd accepts a chroot only below folders owned by root that nobody else can write
        // (/tmp is not one); the daemon, as imgspool, must still pass through.
        top_ = pattern;
        ::chmod(top_.c_str(), 0755);

        ASSERT_NO_FATAL_FAILURE(make_system_users());
        ASSERT_NO_FATAL_FAILURE(make_folders());
        ASSERT_NO_FATAL_FAILURE(make_uploader());
    }

    void TearDown() override {
        if (daemon_) {
            daemon_->send(SIGTERM);
            if (!daemon_->wait_for_exit(30s)) daemon_->kill_now();
        }
        sshd_.reset();
        if (uploader_made_) run("/usr/sbin/userdel", {kUploader}, top_);
        std::error_code ec;
        if (!top_.empty()) stdfs::remove_all(top_, ec);
    }

    stdfs::path chroot() const { return top_ / "spool" / "default"; }
    stdfs::path state() const { return top_ / "state"; }

    void make_system_users() {
        const stdfs::path sysusers = kSource / "packaging" / "imgspool.sysusers";
        ASSERT_TRUE(stdfs::exists(sysusers)) << sysusers << " is missing";
        const Outcome made = run("/usr/bin/systemd-sysusers", {sysusers.string()}, top_);
        ASSERT_TRUE(made.status.exited && made.status.code == 0)
            << "systemd-sysusers: " << made.status.describe() << "\n"
            << made.output;
        const passwd* daemon_user = ::getpwnam("imgspool");
        ASSERT_NE(daemon_user, nullptr) << "no user imgspool after systemd-sysusers";
        daemon_uid_ = daemon_user->pw_uid;
        const group* drop = ::getgrnam("imgspool-drop");
        ASSERT_NE(drop, nullptr) << "no group imgspool-drop after systemd-sysusers";
        drop_gid_ = drop->gr_gid;
        bool member = false;
        for (char** m = drop->gr_mem; m && *m; ++m)
            member = member || std::string(*m) == "imgspool";
        ASSERT_TRUE(member) << "imgspool is not a member of imgspool-drop";
    }

    // The package's tmpfiles.d entry with its paths moved under top_, applied by
    // systemd-tmpfiles: the same owners and modes as an installed spool.
    void make_folders() {
        const stdfs::path entry = kSource / "packaging" / "imgspool.tmpfiles";
        ASSERT_TRUE(stdfs::exists(entry)) << entry << " is missing";
        std::string text = read_file(entry);
        ASSERT_NE(text.find(kPackagedChroot), std::string::npos)
            << entry << " has no spool root " << kPackagedChroot;
        text = replace_all(text, {{kPackagedSpools, (top_ / "spool").string()},
                                  {kPackagedState, state().string()}});
        const stdfs::path moved = top_ / "imgspool-test.tmpfiles";
        write_file(moved, text);
        const Outcome made = run("/usr/bin/systemd-tmpfiles", {"--create", moved.string()}, top_);
        ASSERT_TRUE(made.status.exited && made.status.code == 0)
            << "systemd-tmpfiles: " << made.status.describe() << "\n"
            << made.output << text;
        const struct stat root = stat_of(chroot());
        ASSERT_EQ(root.st_uid, 0u) << "the spool root (the chroot) must be root's";
        ASSERT_EQ(root.st_mode & 022, 0u) << "the spool root must be writable by root only";
        for (const char* sub : {"inbox", "work", "done", "failed"}) {
            ASSERT_TRUE(stdfs::is_directory(chroot() / sub)) << sub << " not made";
        }
    }

    void make_uploader() {
        run("/usr/sbin/userdel", {kUploader}, top_);  // left by an earlier run that was killed
        // '*': no password, but not a locked account, which sshd would refuse.
        const Outcome made =
            run("/usr/sbin/useradd",
                {"--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                 "--password", "*", "-G", "imgspool-drop", kUploader},
                top_);
        ASSERT_TRUE(made.status.exited && made.status.code == 0)
            << "useradd: " << made.status.describe() << "\n"
            << made.output;
        uploader_made_ = true;
        const passwd* pw = ::getpwnam(kUploader);
        ASSERT_NE(pw, nullptr);
        uploader_uid_ = pw->pw_uid;
    }

    // sshd with the example drop-in, its ChrootDirectory moved to the test's spool root.
    void start_sshd() {
        const stdfs::path example = kSource / "packaging" / "examples" / "sshd-imgspool-drop.conf";
        std::string dropin = read_file(example);
        ASSERT_NE(dropin.find(std::string("ChrootDirectory ") + kPackagedChroot), std::string::npos)
            << example << " does not chroot into " << kPackagedChroot;
        dropin = replace_all(dropin, {{kPackagedChroot, chroot().string()}});
        write_file(top_ / "sshd-imgspool-drop.conf", dropin);
        stdfs::create_directories(top_ / "keys");
        ::chmod((top_ / "keys").c_str(), 0755);
        sshd_ = std::make_unique<SshdServer>(SshdOptions{
            .authorized_keys = top_ / "keys" / "authorized_keys",
            .extra_config = {"Include " + (top_ / "sshd-imgspool-drop.conf").string()}});
    }

    // The daemon as the unit runs it: user imgspool with its groups, CAP_LEASE and nothing else.
    void start_daemon() {
        std::ostringstream config;
        config << "[daemon]\n"
               << "state_dir = \"" << state().string() << "\"\n"
               << "workers = 1\nsettle_ms = 300\nrescan_s = 1\n\n"
               << "[[spool]]\nname = \"default\"\n"
               << "root = \"" << chroot().string() << "\"\nprofile = \"web\"\n\n"
               << "[store]\nkind = \"local\"\n"
               << "path = \"" << (state() / "objects").string() << "\"\n"
               << "public_base_url = \"" << kCdn << "\"\n";
        write_file(top_ / "imgspool.toml", config.str());
        ::chmod((top_ / "imgspool.toml").c_str(), 0644);
        // A copy in the test folder: user imgspool may not be able to reach the build tree (a
        // home folder, say).
        const stdfs::path binary = top_ / "imgspool";
        stdfs::copy_file(imgspool_binary(), binary);
        ::chmod(binary.c_str(), 0755);
        std::vector<std::string> args =
            as_user("imgspool", {"--inh-caps", "+lease", "--ambient-caps", "+lease",
                                 binary.string(), "run", "-c", (top_ / "imgspool.toml").string()});
        daemon_ = std::make_unique<ChildProcess>("/usr/bin/setpriv", args, top_ / "daemon.log",
                                                 top_ / "daemon.log");
        ASSERT_TRUE(SpoolFixture::wait_for(
            [&] { return daemon_log().find("imgspool started") != std::string::npos; }, 30s))
            << "the daemon did not start:\n"
            << daemon_log();
    }

    // sftp as the uploader, running `batch` (sftp's -b: it stops at the first failing command
    // and exits non-zero).
    Outcome sftp(const std::string& batch) {
        const stdfs::path file = top_ / "sftp.batch";
        write_file(file, batch);
        std::vector<std::string> args = sshd_->client_options();
        args.insert(args.begin(), {"-b", file.string(), "-P", std::to_string(sshd_->port())});
        args.push_back(std::string(kUploader) + "@127.0.0.1");
        return run("/usr/bin/sftp", args, top_);
    }

    std::string daemon_log() const {
        std::error_code ec;
        return stdfs::exists(top_ / "daemon.log", ec) ? read_file(top_ / "daemon.log") : "";
    }

    // What a failure needs: both logs.
    std::string logs() const {
        return "daemon log:\n" + daemon_log() + "\nsshd log:\n" + (sshd_ ? sshd_->log() : "");
    }

    // A line of /proc/PID/status, e.g. "Uid:" -> "Uid:\t998\t998\t998\t998".
    static std::string proc_status_line(pid_t pid, const std::string& key) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(key, 0) == 0) return line;
        }
        return {};
    }

    stdfs::path top_;
    uid_t daemon_uid_ = 0;
    uid_t uploader_uid_ = 0;
    gid_t drop_gid_ = 0;
    bool uploader_made_ = false;
    std::unique_ptr<SshdServer> sshd_;
    std::unique_ptr<ChildProcess> daemon_;
};

TEST_F(SftpDropIn, UploaderDropsIntoChrootedInboxAndDaemonAsImgspoolProcessesIt) {
    ASSERT_NO_FATAL_FAILURE(start_sshd());
    ASSERT_NO_FATAL_FAILURE(start_daemon());

    // Not root: user imgspool, with CAP_LEASE (bit 28) effective for the writer check.
    const std::string uid_line = proc_status_line(daemon_->pid(), "Uid:");
    EXPECT_NE(uid_line.find("\t" + std::to_string(daemon_uid_) + "\t"), std::string::npos)
        << uid_line;
    const std::string cap_line = proc_status_line(daemon_->pid(), "CapEff:");
    ASSERT_FALSE(cap_line.empty());
    const unsigned long long caps =
        std::stoull(cap_line.substr(cap_line.find('\t') + 1), nullptr, 16);
    EXPECT_EQ(caps, 1ull << 28) << "effective capabilities: " << cap_line;

    // The client's own file is 0644: what arrives is what the drop-in's umask makes of it.
    const std::string bytes = make_jpeg({.width = 640, .height = 480, .seed = 111});
    const stdfs::path local = top_ / "photo.jpg";
    write_file(local, bytes);
    ::chmod(local.c_str(), 0644);
    const Outcome put = sftp("put " + local.string() + " /inbox/photo.jpg\n");
    ASSERT_TRUE(put.status.exited && put.status.code == 0)
        << "sftp put: " << put.status.describe() << "\n"
        << put.output << logs();

    const stdfs::path done = chroot() / "done" / "photo.jpg";
    ASSERT_TRUE(SpoolFixture::wait_for([&] { return stdfs::exists(done); }, 60s))
        << "photo.jpg never reached done/\n"
        << logs();
    EXPECT_EQ(read_file(done), bytes);
    const struct stat st = stat_of(done);
    EXPECT_EQ(st.st_uid, uploader_uid_) << "the original is moved, not copied";
    EXPECT_EQ(st.st_gid, drop_gid_) << "the setgid inbox gives uploads the group imgspool-drop";
    EXPECT_EQ(st.st_mode & 07777, 0640u) << "internal-sftp -u 0007 on a 0644 upload";
    EXPECT_TRUE(SpoolFixture::files_under(chroot() / "failed").empty()) << logs();
    EXPECT_EQ(daemon_log().find("cannot see writers"), std::string::npos)
        << "the read lease was refused:\n"
        << daemon_log();

    // The README's question, asked as the README asks it (user imgspool owns the state folder).
    const stdfs::path db = state() / "imgspool.db";
    Outcome counts;
    ASSERT_TRUE(SpoolFixture::wait_for(
        [&] {
            counts =
                run("/usr/bin/setpriv",
                    as_user("imgspool", {"sqlite3", db.string(),
                                         "select status, count(*) from upload_jobs group by 1"}),
                    top_);
            return counts.output == "complete|1\n";
        },
        30s))
        << "sqlite3 as imgspool: " << counts.status.describe() << "\n"
        << counts.output << logs();
    const Outcome job =
        run("/usr/bin/sqlite3",
            {"-readonly", db.string(), "select status, spool, source_name, error from upload_jobs"},
            top_);
    EXPECT_EQ(job.output, "complete|default|photo.jpg|\n");

    // The uploader sees the inbox and nothing the daemon made of the upload.
    const Outcome inbox = sftp("ls /inbox\n");
    EXPECT_TRUE(inbox.status.exited && inbox.status.code == 0) << inbox.output << logs();
    const std::vector<std::string> denied_commands{
        "ls /done", "get /done/photo.jpg " + (top_ / "back.jpg").string(), "ls /work",
        "ls /failed"};
    for (const std::string& denied : denied_commands) {
        const Outcome r = sftp(denied + "\n");
        EXPECT_FALSE(r.status.exited && r.status.code == 0)
            << "the uploader could run `" << denied << "`:\n"
            << r.output;
    }
    EXPECT_FALSE(stdfs::exists(top_ / "back.jpg"));
    // Locked into the spool root, which only root may write.
    const Outcome outside = sftp("put " + local.string() + " /photo.jpg\n");
    EXPECT_FALSE(outside.status.exited && outside.status.code == 0) << outside.output;
    EXPECT_FALSE(stdfs::exists(chroot() / "photo.jpg"));
}

}  // namespace
}  // namespace imgspool::it
