#include "watcher/settle_tracker.hpp"

#include <iterator>
#include <string_view>
#include <tuple>

namespace imgspool {

bool operator<(const FileKey& a, const FileKey& b) {
    return std::tie(a.spool, a.relative.native()) < std::tie(b.spool, b.relative.native());
}

SettleTracker::SettleTracker(std::chrono::milliseconds settle,
                             std::chrono::milliseconds repeat_after)
    : settle_(settle), repeat_after_(repeat_after) {}

void SettleTracker::wait_again(Entry& e, const FileState& state, TimePoint now) {
    e.phase = Phase::waiting;
    if (e.state != state) e.changed_at = now;
    e.state = state;
    e.since = now;
}

void SettleTracker::noticed(const FileKey& key, const FileState& state, TimePoint now) {
    auto [it, inserted] = entries_.try_emplace(key, Entry{Phase::waiting, state, now, now, {}});
    if (inserted) return;
    Entry& e = it->second;
    if (e.phase == Phase::waiting || (e.phase == Phase::reported && e.state != state)) {
        wait_again(e, state, now);
    }
}

void SettleTracker::touched(const FileKey& key, const FileState& state, TimePoint now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    if (e.phase == Phase::waiting || (e.phase == Phase::reported && e.state != state)) {
        wait_again(e, state, now);
    }
}

void SettleTracker::scanned(const FileKey& key, const FileState& state, TimePoint now) {
    auto [it, inserted] = entries_.try_emplace(key, Entry{Phase::waiting, state, now, now, {}});
    if (inserted) return;
    Entry& e = it->second;
    switch (e.phase) {
        case Phase::waiting:
            if (e.state != state) wait_again(e, state, now);
            break;
        case Phase::in_flight:
            break;
        case Phase::reported:
            if (e.state != state || now - e.since >= repeat_after_) wait_again(e, state, now);
            break;
    }
}

void SettleTracker::forget(const FileKey& key) {
    entries_.erase(key);
}

void SettleTracker::forget_folder(std::size_t spool, const std::filesystem::path& relative_dir) {
    const std::string prefix = relative_dir.empty() ? "" : relative_dir.native() + "/";
    auto it = entries_.lower_bound(FileKey{spool, prefix});
    while (it != entries_.end() && it->first.spool == spool &&
           std::string_view(it->first.relative.native()).starts_with(prefix)) {
        it = entries_.erase(it);
    }
}

void SettleTracker::forget_unlisted(std::size_t spool,
                                    const std::set<std::filesystem::path>& present) {
    auto it = entries_.lower_bound(FileKey{spool, {}});
    while (it != entries_.end() && it->first.spool == spool) {
        const bool gone =
            it->second.phase != Phase::in_flight && !present.contains(it->first.relative);
        it = gone ? entries_.erase(it) : std::next(it);
    }
}

std::vector<FileKey> SettleTracker::waiting() const {
    std::vector<FileKey> keys;
    for (const auto& [key, e] : entries_) {
        if (e.phase == Phase::waiting) keys.push_back(key);
    }
    return keys;
}

std::vector<std::pair<FileKey, FileState>> SettleTracker::settled(const std::vector<Sighting>& seen,
                                                                  TimePoint now) {
    std::vector<std::pair<FileKey, FileState>> due;
    for (const auto& [key, state] : seen) {
        auto it = entries_.find(key);
        if (it == entries_.end() || it->second.phase != Phase::waiting) continue;
        Entry& e = it->second;
        if (!state) {
            entries_.erase(it);
        } else if (*state != e.state) {
            wait_again(e, *state, now);
        } else if (now - e.since >= settle_) {
            e.phase = Phase::in_flight;
            due.emplace_back(key, e.state);
        }
    }
    return due;
}

void SettleTracker::reported(const FileKey& key, const std::optional<FileState>& after,
                             TimePoint now) {
    if (!after) {
        entries_.erase(key);
        return;
    }
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.phase == Phase::in_flight &&
        it->second.state != *after) {
        wait_again(it->second, *after, now);  // written to while on_stable ran
        return;
    }
    entries_.insert_or_assign(key, Entry{Phase::reported, *after, now, now, {}});
}

void SettleTracker::not_whole(const FileKey& key, std::string reason, TimePoint now) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.phase != Phase::in_flight) return;
    it->second.phase = Phase::waiting;
    it->second.since = now;
    it->second.not_whole_reason = std::move(reason);
}

void SettleTracker::retry_later(const FileKey& key, TimePoint now) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.phase != Phase::in_flight) return;
    it->second.phase = Phase::waiting;
    it->second.since = now;
}

std::chrono::nanoseconds SettleTracker::unchanged_for(const FileKey& key, TimePoint now) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) return {};
    return now - it->second.changed_at;
}

std::vector<SettleTracker::NotWhole> SettleTracker::not_whole_files() const {
    std::vector<NotWhole> files;
    for (const auto& [key, e] : entries_) {
        if (!e.not_whole_reason.empty() && e.phase != Phase::reported) {
            files.push_back({key, e.state, e.not_whole_reason, e.changed_at});
        }
    }
    return files;
}

}  // namespace imgspool
