#include "watcher/read_lease.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/fs.hpp"

namespace imgspool {

namespace {

std::string refusal(int err) {
    switch (err) {
        case EINVAL:
            return "leases not supported here (EINVAL)";
        case EACCES:
        case EPERM:
            return std::string("no CAP_LEASE and not the owner (") +
                   (err == EACCES ? "EACCES" : "EPERM") + ")";
        default:
            return "cannot take a read lease: " + fs::errno_text(err);
    }
}

}  // namespace

ReadLease ReadLease::take(const std::filesystem::path& path) {
    ReadLease lease;
    lease.fd_ = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (lease.fd_ < 0) {
        // EWOULDBLOCK here: another process holds a write lease on it (it is being written).
        if (errno == EWOULDBLOCK) {
            lease.writers_ = Writers::present;
        } else {
            lease.reason_ = "cannot open: " + fs::errno_text(errno);
        }
        return lease;
    }
    if (::fcntl(lease.fd_, F_SETLEASE, F_RDLCK) == 0) {
        lease.writers_ = Writers::none;
    } else if (errno == EAGAIN) {
        lease.writers_ = Writers::present;
    } else {
        lease.reason_ = refusal(errno);
    }
    return lease;
}

ReadLease::ReadLease(ReadLease&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      writers_(std::exchange(other.writers_, Writers::unknown)),
      reason_(std::move(other.reason_)) {}

ReadLease& ReadLease::operator=(ReadLease&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        writers_ = std::exchange(other.writers_, Writers::unknown);
        reason_ = std::move(other.reason_);
    }
    return *this;
}

ReadLease::~ReadLease() {
    release();
}

void ReadLease::release() {
    if (fd_ < 0) return;
    if (writers_ == Writers::none) ::fcntl(fd_, F_SETLEASE, F_UNLCK);
    ::close(fd_);  // closing alone would drop the lease too; F_UNLCK says so explicitly
    fd_ = -1;
}

bool ReadLease::intact() const {
    return held() && ::fcntl(fd_, F_GETLEASE) == F_RDLCK;
}

void ignore_lease_break_signal() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGIO, &ignore, nullptr);
}

}  // namespace imgspool
