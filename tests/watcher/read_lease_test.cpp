#include "watcher/read_lease.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <utility>

#include "common/fs.hpp"
#include "temp_dir.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;

namespace {

// A child process running `body`, which reports one int back (an errno, a Writers value) and
// may then wait until the parent lets it go. Killed and reaped on destruction.
class Child {
  public:
    explicit Child(const std::function<int()>& body, bool hold = false) {
        int report[2];
        int release[2];
        if (::pipe(report) != 0 || ::pipe(release) != 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(report[0]);
            ::close(release[1]);
            const int value = body();
            (void)!::write(report[1], &value, sizeof value);
            char c;
            if (hold) (void)!::read(release[0], &c, 1);  // until the parent closes its end
            ::_exit(0);
        }
        ::close(report[1]);
        ::close(release[0]);
        report_ = fs::UniqueFd(report[0]);
        release_ = fs::UniqueFd(release[1]);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() { finish(); }

    // What the child reported (-1 if it died first).
    int report() {
        int value = -1;
        if (::read(report_.get(), &value, sizeof value) != sizeof value) return -1;
        return value;
    }
    // Lets a holding child exit and waits for it.
    void finish() {
        if (pid_ <= 0) return;
        release_ = fs::UniqueFd();
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
    fs::UniqueFd report_;
    fs::UniqueFd release_;
};

class ReadLeaseTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { ignore_lease_break_signal(); }

    TempDir dir;
    stdfs::path file = dir.path() / "photo.jpg";

    void SetUp() override { put_file(file, "bytes"); }
};

}  // namespace

TEST_F(ReadLeaseTest, NoWriterMeansTheLeaseIsHeld) {
    ReadLease lease = ReadLease::take(file);
    EXPECT_EQ(lease.writers(), Writers::none) << lease.reason();
    EXPECT_TRUE(lease.held());
    EXPECT_TRUE(lease.intact());
    EXPECT_GE(lease.fd(), 0);
    EXPECT_EQ(lease.reason(), "");
}

TEST_F(ReadLeaseTest, WriterInThisProcessIsPresentUntilClosed) {
    {
        const fs::UniqueFd writer(::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        ASSERT_TRUE(writer.valid());
        const ReadLease lease = ReadLease::take(file);
        EXPECT_EQ(lease.writers(), Writers::present) << lease.reason();
        EXPECT_FALSE(lease.held());
        EXPECT_FALSE(lease.intact());
    }
    EXPECT_EQ(ReadLease::take(file).writers(), Writers::none);
}

TEST_F(ReadLeaseTest, ReadersDoNotCount) {
    const fs::UniqueFd reader(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());
    EXPECT_EQ(ReadLease::take(file).writers(), Writers::none);
}

TEST_F(ReadLeaseTest, WriterInAnotherProcessIsPresentUntilItExits) {
    const std::string path = file.string();
    Child writer([&] { return ::open(path.c_str(), O_WRONLY) >= 0 ? 0 : errno; }, /*hold=*/true);
    ASSERT_EQ(writer.report(), 0);
    EXPECT_EQ(ReadLease::take(file).writers(), Writers::present);
    writer.finish();
    EXPECT_EQ(ReadLease::take(file).writers(), Writers::none);
}

TEST_F(ReadLeaseTest, HeldLeaseMakesANewWriterWaitAndIsNoLongerIntact) {
    const std::string path = file.string();
    auto open_for_writing = [&] {
        const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
        return fd >= 0 ? 0 : errno;
    };
    {
        ReadLease lease = ReadLease::take(file);
        ASSERT_TRUE(lease.held()) << lease.reason();
        ASSERT_TRUE(lease.intact());
        Child writer(open_for_writing);
        EXPECT_EQ(writer.report(), EWOULDBLOCK);
        writer.finish();
        // The kernel is breaking the lease now: the holder must let go.
        EXPECT_TRUE(lease.held());
        EXPECT_FALSE(lease.intact());
    }
    Child writer(open_for_writing);  // released: writers open at once
    EXPECT_EQ(writer.report(), 0);
}

TEST_F(ReadLeaseTest, ReleasedOnDestructionAndMovedWithoutReleasing) {
    ReadLease first = ReadLease::take(file);
    ASSERT_TRUE(first.held());
    const int fd = first.fd();
    ReadLease second = std::move(first);
    EXPECT_EQ(first.fd(), -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(second.fd(), fd);
    EXPECT_TRUE(second.intact());
    second = ReadLease::take(file);  // the old lease is released, the new one held
    EXPECT_TRUE(second.intact());
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // the first lease's descriptor is closed
}

TEST_F(ReadLeaseTest, FileThatCannotBeOpenedIsUnknown) {
    const ReadLease missing = ReadLease::take(dir.path() / "missing.jpg");
    EXPECT_EQ(missing.writers(), Writers::unknown);
    EXPECT_EQ(missing.fd(), -1);
    EXPECT_EQ(missing.reason(), "cannot open: No such file or directory");
    EXPECT_FALSE(missing.intact());

    stdfs::create_symlink(file, dir.path() / "link.jpg");
    const ReadLease link = ReadLease::take(dir.path() / "link.jpg");  // never followed
    EXPECT_EQ(link.writers(), Writers::unknown);
    EXPECT_NE(link.reason().find("cannot open"), std::string::npos);
}

TEST_F(ReadLeaseTest, NotTheOwnerAndNoCapLeaseIsUnknown) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
    stdfs::permissions(dir.path(), stdfs::perms::owner_all | stdfs::perms::others_read |
                                       stdfs::perms::others_exec);
    const stdfs::path path = file;
    Child other([&] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) return -2;
        const ReadLease lease = ReadLease::take(path);
        if (lease.writers() != Writers::unknown) return -3;
        return lease.reason() == "no CAP_LEASE and not the owner (EACCES)" ? 0 : -4;
    });
    EXPECT_EQ(other.report(), 0);
}

TEST_F(ReadLeaseTest, WorksOnTmpfs) {
    const stdfs::path shm = "/dev/shm";
    if (::access(shm.c_str(), W_OK) != 0) GTEST_SKIP() << "no writable /dev/shm";
    const stdfs::path on_tmpfs = shm / ("imgspool-lease-" + std::to_string(::getpid()));
    put_file(on_tmpfs, "bytes");
    {
        const ReadLease lease = ReadLease::take(on_tmpfs);
        EXPECT_EQ(lease.writers(), Writers::none) << lease.reason();
        const fs::UniqueFd writer(::open(on_tmpfs.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        EXPECT_FALSE(writer.valid());
        EXPECT_EQ(errno, EWOULDBLOCK);
    }
    {
        const fs::UniqueFd writer(::open(on_tmpfs.c_str(), O_WRONLY | O_CLOEXEC));
        EXPECT_EQ(ReadLease::take(on_tmpfs).writers(), Writers::present);
    }
    stdfs::remove(on_tmpfs);
}
