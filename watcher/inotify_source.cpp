#include "watcher/inotify_source.hpp"

#include <fcntl.h>
#include <inotifytools/inotifytools.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/fs.hpp"
#include "common/log.hpp"

namespace imgspool {

namespace {

// The one-active-user rule for the process-global library (see inotify_source.hpp).
std::atomic<bool> g_library_in_use{false};

constexpr std::uint32_t kFolderEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                        IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                        IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;

std::string watch_failure(int err) {
    if (err == ENOSPC) {
        return "the inotify watch limit is reached; raise the sysctl fs.inotify.max_user_watches";
    }
    if (err == EMFILE) {
        return "the inotify instance limit is reached; raise fs.inotify.max_user_instances";
    }
    return fs::errno_text(err);
}

// Empties the library's static event buffer, which survives inotifytools_cleanup() and
// would otherwise hand old events (with old watch numbers) to the next instance.
void drain_library_buffer() {
    while (inotifytools_next_events(0, 1) != nullptr) {
    }
}

}  // namespace

Result<std::unique_ptr<InotifySource>> InotifySource::open(const std::filesystem::path& wake_dir) {
    bool expected = false;
    if (!g_library_in_use.compare_exchange_strong(expected, true)) {
        return make_error(Stage::watch,
                          "another SpoolWatcher is already active in this process "
                          "(libinotifytools allows only one); stop it first");
    }
    if (!inotifytools_initialize()) {
        int err = inotifytools_error();
        g_library_in_use = false;
        return make_error(Stage::watch, "cannot start inotify: " + watch_failure(err));
    }
    std::unique_ptr<InotifySource> source(new InotifySource());
    source->make_wake_file(wake_dir);
    source->arm_wake();
    return source;
}

InotifySource::~InotifySource() {
    drain_library_buffer();
    inotifytools_cleanup();
    if (!temp_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(temp_dir_, ec);
    }
    g_library_in_use = false;
}

void InotifySource::make_wake_file(const std::filesystem::path& wake_dir) {
    std::filesystem::path dir = wake_dir;
    if (dir.empty()) {
        std::error_code ec;
        std::string tmpl = (std::filesystem::temp_directory_path(ec) / "imgspool-wake-XXXXXX");
        if (ec || ::mkdtemp(tmpl.data()) == nullptr) {
            log::warn("no wake-up folder; stopping the watcher may take up to a second",
                      {{"reason", fs::errno_text(errno)}});
            return;
        }
        temp_dir_ = dir = tmpl;
    }
    const std::filesystem::path file = dir / "watcher.wake";
    fs::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
        log::warn("no wake-up file; stopping the watcher may take up to a second",
                  {{"file", file.string()}, {"reason", fs::errno_text(errno)}});
        return;
    }
    wake_file_ = file;
}

void InotifySource::arm_wake() {
    if (wake_file_.empty()) return;
    wake_wd_ = -1;
    if (inotifytools_watch_file(wake_file_.c_str(), IN_ATTRIB)) {
        wake_wd_ = inotifytools_wd_from_filename(wake_file_.c_str());
    }
}

Result<int> InotifySource::watch_folder(const std::filesystem::path& dir) {
    if (!inotifytools_watch_file(dir.c_str(), static_cast<int>(kFolderEvents))) {
        return make_error(Stage::watch,
                          "cannot watch folder: " + watch_failure(inotifytools_error()),
                          dir.string());
    }
    // The library files folders under "path/".
    int wd = inotifytools_wd_from_filename((dir.string() + "/").c_str());
    if (wd < 0) return make_error(Stage::watch, "inotify lost track of the folder", dir.string());
    return wd;
}

bool InotifySource::remembers(const std::filesystem::path& dir) const {
    return inotifytools_wd_from_filename((dir.string() + "/").c_str()) >= 0;
}

void InotifySource::unwatch(int wd) {
    inotifytools_remove_watch_by_wd(wd);
}

Status InotifySource::reset() {
    drain_library_buffer();
    inotifytools_cleanup();
    if (!inotifytools_initialize()) {
        return make_error(Stage::watch,
                          "cannot restart inotify: " + watch_failure(inotifytools_error()));
    }
    arm_wake();
    return ok_status();
}

std::optional<InotifyEvent> InotifySource::take_injected() {
    std::lock_guard lock(injected_mutex_);
    if (injected_.empty()) return std::nullopt;
    InotifyEvent e{-1, injected_.front(), {}};
    injected_.pop_front();
    return e;
}

std::optional<InotifyEvent> InotifySource::next() {
    if (auto e = take_injected()) return e;
    const inotify_event* raw = inotifytools_next_event(1);
    if (raw == nullptr) {
        int err = inotifytools_error();
        if (err != 0 && err != EINTR) {
            log::warn("reading inotify events failed", {{"reason", fs::errno_text(err)}});
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no busy loop
        }
        return take_injected();
    }
    if (raw->wd == wake_wd_ && wake_wd_ >= 0) return take_injected();
    if (dropping_ && !(raw->mask & IN_Q_OVERFLOW)) return std::nullopt;
    InotifyEvent e{raw->wd, raw->mask, {}};
    if (raw->len > 0) e.name.assign(raw->name, ::strnlen(raw->name, raw->len));
    return e;
}

void InotifySource::wake() {
    if (!wake_file_.empty()) ::utimensat(AT_FDCWD, wake_file_.c_str(), nullptr, 0);
}

void InotifySource::inject(std::uint32_t mask) {
    {
        std::lock_guard lock(injected_mutex_);
        injected_.push_back(mask);
    }
    wake();
}

}  // namespace imgspool
