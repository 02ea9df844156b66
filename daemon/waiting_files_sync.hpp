// Keeps the waiting_files table in step with the watcher's view of files that are not whole
// yet, so a person asking the database (or `imgspool status`) sees them. Its own thread writes
// only when the list changed; a busy database is simply tried again at the next tick.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/job_db.hpp"
#include "watcher/spool_watcher.hpp"

namespace imgspool {

class WaitingFilesSync {
  public:
    // list: the watcher's files that are not whole yet (SpoolWatcher::waiting_files).
    using List = std::function<std::vector<WaitingFileInfo>()>;
    WaitingFilesSync(List list, JobDb& db,
                     std::chrono::milliseconds every = std::chrono::seconds(1));
    ~WaitingFilesSync();  // stop()
    WaitingFilesSync(const WaitingFilesSync&) = delete;
    WaitingFilesSync& operator=(const WaitingFilesSync&) = delete;

    void start();
    void stop();
    // Writes the table now if the list changed; true when the table is current.
    bool sync_once();
    std::size_t waiting() const;  // files in the last list written

  private:
    List list_;
    JobDb& db_;
    std::chrono::milliseconds every_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool written_ = false;
    std::vector<WaitingFile> last_;
    std::thread thread_;
};

}  // namespace imgspool
