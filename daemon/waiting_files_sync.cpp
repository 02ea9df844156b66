#include "daemon/waiting_files_sync.hpp"

#include "common/log.hpp"
#include "common/printable_name.hpp"

namespace imgspool {

namespace {

bool same(const std::vector<WaitingFile>& a, const std::vector<WaitingFile>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].spool != b[i].spool || a[i].source_name != b[i].source_name ||
            a[i].size != b[i].size || a[i].reason != b[i].reason || a[i].since != b[i].since) {
            return false;
        }
    }
    return true;
}

}  // namespace

WaitingFilesSync::WaitingFilesSync(List list, JobDb& db, std::chrono::milliseconds every)
    : list_(std::move(list)), db_(db), every_(every) {}

WaitingFilesSync::~WaitingFilesSync() {
    stop();
}

void WaitingFilesSync::start() {
    thread_ = std::thread([this] {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            sync_once();
            lock.lock();
            wake_.wait_for(lock, every_, [this] { return stopping_; });
        }
    });
}

void WaitingFilesSync::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool WaitingFilesSync::sync_once() {
    std::vector<WaitingFile> now;
    for (const WaitingFileInfo& f : list_()) {
        now.push_back(
            {f.spool, printable_name(f.relative.native()), f.size, f.reason, iso_utc(f.since)});
    }
    {
        std::lock_guard lock(mutex_);
        if (written_ && same(now, last_)) return true;
    }
    if (Status st = db_.replace_waiting_files(now); !st) {
        log::debug("cannot update waiting_files", {{"error", st.error().message()}});
        return false;
    }
    std::lock_guard lock(mutex_);
    last_ = std::move(now);
    written_ = true;
    return true;
}

std::size_t WaitingFilesSync::waiting() const {
    std::lock_guard lock(mutex_);
    return last_.size();
}

}  // namespace imgspool
