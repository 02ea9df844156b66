// Is another process writing a file? Linux refuses a read lease (fcntl F_SETLEASE, F_RDLCK)
// with EAGAIN while any descriptor on this host has the file open for writing, so taking one
// answers without polling every process. Taking a lease needs the file's owner uid or
// CAP_LEASE; NFS (whose writers on other hosts no lease can see) and some file systems refuse
// leases altogether: then the answer is "unknown" and the caller falls back to other signs.
#pragma once

#include <filesystem>
#include <string>

namespace imgspool {

enum class Writers { none, present, unknown };

class ReadLease {
  public:
    // Opens path (O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC) and tries to take a read lease.
    static ReadLease take(const std::filesystem::path& path);

    ReadLease(ReadLease&& other) noexcept;
    ReadLease& operator=(ReadLease&& other) noexcept;
    ReadLease(const ReadLease&) = delete;
    ReadLease& operator=(const ReadLease&) = delete;
    ~ReadLease();  // releases the lease (F_UNLCK) and closes the file

    // none: the lease is held; present: refused with EAGAIN (a writer has the file open);
    // unknown: see reason().
    Writers writers() const { return writers_; }
    // Why writers() is unknown: "leases not supported here (EINVAL)", "no CAP_LEASE and not the
    // owner (EACCES)", "cannot open: ..."; empty otherwise.
    const std::string& reason() const { return reason_; }
    bool held() const { return writers_ == Writers::none; }
    // While held: true until another process asks to open the file for writing (or to truncate
    // or rename it); the kernel then starts breaking the lease and F_GETLEASE stops answering
    // F_RDLCK. The opener is blocked (or gets EWOULDBLOCK) until this lease is released or
    // /proc/sys/fs/lease-break-time passes, so release a broken lease promptly.
    bool intact() const;
    int fd() const { return fd_; }  // -1 when the open failed

  private:
    ReadLease() = default;
    void release();

    int fd_ = -1;
    Writers writers_ = Writers::unknown;
    std::string reason_;
};

// The kernel signals a lease holder with SIGIO when its lease is being broken, and SIGIO's
// default action ends the process: call once at start-up (main, and tests that take leases).
void ignore_lease_break_signal();

}  // namespace imgspool
