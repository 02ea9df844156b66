#include "pipeline/source_read.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.hpp"
#include "watcher/whole_file.hpp"

namespace imgspool {

namespace {

Error read_error(const char* what, int err) {
    Error e = make_error(Stage::validate, std::string(what) + ": " + fs::errno_text(err));
    e.transient = is_transient_errno(err);
    return e;
}

Status read_all(int fd, std::string& out) {
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return read_error("cannot read", errno);
        if (n == 0) break;  // shorter than it was a moment ago: the state check says so
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return ok_status();
}

}  // namespace

Result<SourceRead> read_claimed_source(const std::filesystem::path& path,
                                       const std::optional<FileState>& claimed,
                                       const SourceReadLimits& limits,
                                       std::optional<FileState>& seen) {
    fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) {
        if (errno == ENOENT) {
            return make_error(Stage::claim, "the file vanished from work/ before it was read");
        }
        return read_error("cannot open", errno);
    }
    std::optional<FileState> before = fstat_state(fd.get());
    if (!before) return read_error("cannot stat", errno);
    seen = before;
    if (!before->regular()) return make_error(Stage::validate, "not a regular file");
    if (claimed && *claimed != *before) {
        return make_transient(Stage::claim, "the file changed after it was claimed (" +
                                                describe_change(*claimed, *before) +
                                                "); waiting for it to settle again");
    }
    if (static_cast<std::uint64_t>(before->size) > limits.max_bytes) {
        return make_error(Stage::validate, "file is " + std::to_string(before->size) +
                                               " bytes, more than the limit of " +
                                               std::to_string(limits.max_bytes) + " bytes");
    }
    SourceRead source;
    source.bytes.resize(static_cast<std::size_t>(before->size));
    if (Status st = read_all(fd.get(), source.bytes); !st) return st.error();
    std::optional<FileState> after = fstat_state(fd.get());
    if (!after) return read_error("cannot stat", errno);
    seen = after;
    if (*after != *before) {
        return make_transient(Stage::claim, "the file changed while it was read (" +
                                                describe_change(*before, *after) +
                                                "); waiting for it to settle again");
    }
    source.state = *after;

    const Wholeness whole = judge_bytes(source.bytes);
    if (whole.verdict == Wholeness::Verdict::incomplete) {
        const auto modified = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(after->mtime_ns)));
        if (std::chrono::system_clock::now() - modified >= limits.abandon_after) {
            return make_error(Stage::validate, whole.reason + "; unchanged since it was claimed; " +
                                                   std::to_string(after->size) + " bytes");
        }
        return make_transient(Stage::claim, whole.reason + "; waiting for the rest");
    }
    return source;
}

}  // namespace imgspool
