#include "pipeline/finish.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace imgspool {
namespace stdfs = std::filesystem;

namespace {

bool taken(const stdfs::path& p) {
    std::error_code ec;
    return stdfs::exists(stdfs::symlink_status(p, ec));
}

std::string now_iso() {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Creates `path` exclusively (O_EXCL): never replaces a file somebody else put there.
Status write_new_file(const stdfs::path& path, const std::string& data) {
    fs::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
        return make_error(Stage::move, "cannot create: " + fs::errno_text(errno), path.string());
    }
    size_t put = 0;
    while (put < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + put, data.size() - put);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return make_error(Stage::move, "write failed: " + fs::errno_text(errno), path.string());
        put += static_cast<size_t>(n);
    }
    return ok_status();
}

}  // namespace

Result<stdfs::path> move_to_done(const SpoolLayout& spool, const stdfs::path& from,
                                 const stdfs::path& relative) {
    return fs::move_unique(from, spool.done() / relative);
}

Result<stdfs::path> move_to_failed(const SpoolLayout& spool, const stdfs::path& from,
                                   const stdfs::path& relative, const FailureNote& note) {
    const stdfs::path wanted = spool.failed() / relative;
    const std::string stem = wanted.stem().string();
    const std::string ext = wanted.extension().string();
    for (int n = 0; n < 10000; ++n) {
        const stdfs::path target =
            n == 0 ? wanted : wanted.parent_path() / (stem + "." + std::to_string(n) + ext);
        const stdfs::path note_path = target.string() + ".error.json";
        if (taken(target) || taken(note_path)) continue;
        Status moved = fs::rename_noreplace(from, target);
        if (!moved) {
            if (taken(target)) continue;  // lost a race for the name: try the next one
            return moved.error();
        }
        const nlohmann::json body = {
            {"upload_id", note.upload_id}, {"spool", note.spool},
            {"source", note.source_name},  {"stage", stage_name(note.error.stage)},
            {"error", note.error.reason},  {"failed_at", now_iso()},
        };
        if (Status st = write_new_file(note_path, body.dump(2) + "\n"); !st) return st.error();
        return target;
    }
    return make_error(Stage::move, "no free name near " + wanted.string(), from.string());
}

void remove_work_folder(const SpoolLayout& spool, const std::string& upload_id) {
    if (upload_id.empty()) return;
    const stdfs::path dir = spool.work() / upload_id;
    // Bottom-up removal of empty folders only: a file left behind stays for recovery.
    std::error_code ec;
    std::vector<stdfs::path> dirs;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
    }
    for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) stdfs::remove(*d, ec);
    stdfs::remove(dir, ec);
}

}  // namespace imgspool
