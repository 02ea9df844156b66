// Claiming moves a settled file out of the users' reach before anything reads it.
#include "watcher/claim.hpp"

#include <sys/stat.h>
#include <uuid/uuid.h>

#include <algorithm>

#include "common/fs.hpp"
#include "watcher/file_state.hpp"
#include "watcher/read_lease.hpp"

namespace imgspool {

namespace stdfs = std::filesystem;

namespace {

// inbox_file's path below inbox/, or empty if it is not strictly inside it.
stdfs::path relative_to_inbox(const SpoolLayout& spool, const stdfs::path& inbox_file) {
    stdfs::path rel =
        inbox_file.lexically_normal().lexically_relative(spool.inbox().lexically_normal());
    if (rel.empty() || rel == "." || *rel.begin() == "..") return {};
    return rel;
}

bool is_plain_component(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

const char* kind_of(const FileState& st) {
    switch (st.type) {
        case S_IFLNK:
            return "a symbolic link";
        case S_IFIFO:
            return "a named pipe (FIFO)";
        case S_IFSOCK:
            return "a socket";
        case S_IFCHR:
        case S_IFBLK:
            return "a device";
        case S_IFDIR:
            return "a folder";
        default:
            return "not a regular file";
    }
}

}  // namespace

Result<ClaimedFile> claim(const SpoolLayout& spool, const stdfs::path& inbox_file,
                          const std::string& upload_id) {
    const std::string file = inbox_file.string();
    if (!is_plain_component(upload_id)) {
        return make_error(Stage::claim, "invalid upload id \"" + upload_id + "\"", file);
    }
    const stdfs::path rel = relative_to_inbox(spool, inbox_file);
    if (rel.empty()) {
        return make_error(Stage::claim, "not inside the inbox " + spool.inbox().string(), file);
    }
    std::optional<FileState> st = lstat_state(inbox_file);
    if (!st) return make_error(Stage::claim, "the file vanished before it could be claimed", file);
    if (!st->regular()) {
        return make_error(Stage::claim,
                          std::string("only regular files are processed; this is ") + kind_of(*st),
                          file);
    }
    // Held until the file has left inbox/: a writer that opens it meanwhile waits for us.
    ReadLease lease = ReadLease::take(inbox_file);
    if (lease.writers() == Writers::present) {
        return make_transient(Stage::claim, "opened for writing by another process again", file);
    }
    const stdfs::path dest = spool.work() / upload_id / rel;
    if (Status moved = fs::rename_noreplace(inbox_file, dest); !moved) {
        remove_empty_folders(spool.work() / upload_id);
        Error e = moved.error();
        e.stage = Stage::claim;
        e.file = file;
        return e;
    }
    std::optional<FileState> after = lstat_state(dest);
    if (!after)
        return make_transient(Stage::claim, "the file vanished from work/ as it was claimed", file);
    return ClaimedFile{upload_id, dest, rel, *after};
}

void remove_empty_folders(const stdfs::path& dir) {
    std::error_code ec;
    std::vector<stdfs::path> dirs;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
    }
    // Deepest first; remove() leaves a folder that still holds anything.
    for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) stdfs::remove(*d, ec);
    stdfs::remove(dir, ec);
}

namespace {

// The regular files below `top` (work/ or work/<upload_id>/), in path order. `work` is the
// spool's work/: a file's first folder below it is its upload id.
std::vector<ClaimedFile> claimed_below(const stdfs::path& work, const stdfs::path& top) {
    std::vector<ClaimedFile> claimed;
    std::error_code ec;
    stdfs::recursive_directory_iterator it(top, stdfs::directory_options::skip_permission_denied,
                                           ec);
    for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec) || it->is_symlink(type_ec)) continue;
        const stdfs::path below = it->path().lexically_relative(work);
        auto part = below.begin();
        const stdfs::path upload_id = *part++;
        stdfs::path rel;
        for (; part != below.end(); ++part) rel /= *part;
        if (rel.empty()) continue;  // a file directly in work/ belongs to no upload
        auto state = lstat_state(it->path());
        if (!state) continue;
        claimed.push_back({upload_id.string(), it->path(), rel, *state});
    }
    std::sort(claimed.begin(), claimed.end(),
              [](const ClaimedFile& a, const ClaimedFile& b) { return a.work_path < b.work_path; });
    return claimed;
}

}  // namespace

std::vector<ClaimedFile> list_claimed(const SpoolLayout& spool) {
    return claimed_below(spool.work(), spool.work());
}

std::vector<ClaimedFile> list_claimed(const SpoolLayout& spool, const std::string& upload_id) {
    if (!is_plain_component(upload_id)) return {};
    return claimed_below(spool.work(), spool.work() / upload_id);
}

std::string new_upload_id() {
    uuid_t id;
    ::uuid_generate_random(id);
    char text[37];
    ::uuid_unparse_lower(id, text);
    return text;
}

}  // namespace imgspool
