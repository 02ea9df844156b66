#include "upload/part_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

namespace imgspool::upload {
namespace {

constexpr std::size_t kRandomBytes = 16;
constexpr std::string_view kSuffix = ".part";

std::string owner_prefix(std::string_view owner) {
    return owner.empty() ? std::string() : std::string(owner) + ".";
}

Error io_error(std::string what, const std::filesystem::path& path, int err) {
    Error e = make_error(Stage::claim, what + ": " + fs::errno_text(err), path.string());
    e.transient = is_transient_errno(err);
    return e;
}

// 128 random bits as hex: a name nobody guesses, so O_EXCL never meets a planted file.
Result<std::string> random_hex() {
    unsigned char bytes[kRandomBytes];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(Stage::claim, "getrandom: " + fs::errno_text(errno));
        got += static_cast<std::size_t>(n);
    }
    std::string name;
    for (unsigned char b : bytes) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", b);
        name += hex;
    }
    return name;
}

}  // namespace

Result<PartFile> PartFile::create(const std::filesystem::path& dir, std::string_view owner) {
    Result<std::string> random = random_hex();
    if (!random) return random.error();
    PartFile part;
    const std::filesystem::path path = dir / (owner_prefix(owner) + *random + std::string(kSuffix));
    part.fd_ = fs::UniqueFd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!part.fd_.valid()) return io_error("cannot create the upload file", path, errno);
    part.path_ = path;
    return part;
}

PartFile::PartFile(PartFile&& other) noexcept
    : fd_(std::move(other.fd_)),
      path_(std::exchange(other.path_, {})),
      size_(std::exchange(other.size_, 0)) {}

PartFile& PartFile::operator=(PartFile&& other) noexcept {
    if (this != &other) {
        remove();
        fd_ = std::move(other.fd_);
        path_ = std::exchange(other.path_, {});
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

PartFile::~PartFile() {
    remove();
}

void PartFile::remove() {
    fd_ = fs::UniqueFd();
    if (!path_.empty()) ::unlink(path_.c_str());  // gone already (accept() failed late): fine
    path_.clear();
}

bool is_part_name_of(std::string_view name, std::string_view owner) {
    const std::string prefix = owner_prefix(owner);
    if (name.size() != prefix.size() + 2 * kRandomBytes + kSuffix.size()) return false;
    if (!name.starts_with(prefix) || !name.ends_with(kSuffix)) return false;
    const std::string_view random = name.substr(prefix.size(), 2 * kRandomBytes);
    return std::all_of(random.begin(), random.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status PartFile::write(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd_.get(), data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error("cannot write the upload file", path_, errno);
        data.remove_prefix(static_cast<std::size_t>(n));
        size_ += static_cast<std::uint64_t>(n);
    }
    return ok_status();
}

Status PartFile::close() {
    const int fd = fd_.release();
    if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) {
        return io_error("cannot close the upload file", path_, errno);
    }
    return ok_status();
}

}  // namespace imgspool::upload
