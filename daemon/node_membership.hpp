// This daemon as one node among those sharing a job record: it heart-beats into the nodes
// table every lease_s / 3, adopts the unfinished jobs of nodes that stopped or fell silent for
// longer than their lease_s every lease_s / 2, and leaves (state stopped) at a clean stop, so
// the others take over its queued claims at once. All times are the database's, so clock skew
// between hosts never decides a lease. One thread; a database that does not answer only delays
// heartbeats and adoption (logged), and /readyz says so once the last heartbeat is too old.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/job_db.hpp"

namespace imgspool {

class NodeMembership {
  public:
    struct Hooks {
        std::function<NodeCounters()> counters;  // jobs in flight and queued here, now
        // How many more jobs this node would start soon (free workers and queue room): adoption
        // takes no more, so the surviving nodes share a dead node's jobs.
        std::function<int()> room;
        std::function<void(const AdoptedJob&)> adopt;  // resumes one adopted job here
        // The spools this node takes files from now: only their jobs are adopted here.
        std::function<std::vector<std::string>()> spools;
    };

    // Registers the node (refused while another live process holds its name).
    static Result<std::unique_ptr<NodeMembership>> join(JobDb& db, const NodeRegistration& me,
                                                        Hooks hooks);
    ~NodeMembership();  // stop() without leaving: a crash-like end keeps the claims for adoption
    NodeMembership(const NodeMembership&) = delete;
    NodeMembership& operator=(const NodeMembership&) = delete;

    void start();
    void stop();
    // After the workers finished: state stopped, so other nodes adopt what is still queued.
    void leave();

    // Why this node should not be called ready: its name was taken over by another process, or
    // no heartbeat reached the database for more than lease_s / 2. nullopt when all is well.
    std::optional<std::string> problem() const;
    // The other nodes' jobs this node took over so far (a metric).
    std::uint64_t adopted() const;

  private:
    using Clock = std::chrono::steady_clock;
    NodeMembership(JobDb& db, int lease_s, Hooks hooks);
    void loop();
    void beat();
    void adopt_orphans();

    JobDb& db_;
    const std::chrono::seconds lease_;
    Hooks hooks_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    Clock::time_point last_beat_;            // the last heartbeat the database took
    std::optional<std::string> taken_over_;  // set once the name belongs to another process
    std::uint64_t adopted_ = 0;
    std::thread thread_;
};

}  // namespace imgspool
