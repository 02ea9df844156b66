#include "daemon/node_membership.hpp"

#include <algorithm>
#include <random>

#include "common/log.hpp"

namespace imgspool {

namespace {

std::chrono::milliseconds at_least_a_second(std::chrono::milliseconds d) {
    return std::max(d, std::chrono::milliseconds(1000));
}

}  // namespace

Result<std::unique_ptr<NodeMembership>> NodeMembership::join(JobDb& db, const NodeRegistration& me,
                                                             Hooks hooks) {
    if (Status st = db.register_node(me); !st) return st.error();
    return std::unique_ptr<NodeMembership>(new NodeMembership(db, me.lease_s, std::move(hooks)));
}

NodeMembership::NodeMembership(JobDb& db, int lease_s, Hooks hooks)
    : db_(db), lease_(lease_s), hooks_(std::move(hooks)), last_beat_(Clock::now()) {}

NodeMembership::~NodeMembership() {
    stop();
}

void NodeMembership::start() {
    std::lock_guard lock(mutex_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { loop(); });
}

void NodeMembership::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void NodeMembership::leave() {
    stop();
    if (Status st = db_.leave(); !st) {
        // The others adopt this node's jobs once its lease runs out instead of at once.
        log::warn("cannot mark this node stopped; its queued jobs wait for its lease to run out",
                  {{"error", st.error().message()}});
    }
}

void NodeMembership::loop() {
    const auto beat_every =
        at_least_a_second(std::chrono::duration_cast<std::chrono::milliseconds>(lease_) / 3);
    const auto adopt_every =
        at_least_a_second(std::chrono::duration_cast<std::chrono::milliseconds>(lease_) / 2);
    // Jitter, so nodes started together do not all ask for the same orphans at once.
    std::minstd_rand random(std::random_device{}());
    std::uniform_int_distribution<int> jitter_pct(-20, 20);
    auto next_adopt = Clock::now() + adopt_every;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        beat();
        if (Clock::now() >= next_adopt) {
            adopt_orphans();
            next_adopt = Clock::now() + adopt_every + adopt_every * jitter_pct(random) / 100;
        }
        lock.lock();
        wake_.wait_for(lock, beat_every, [this] { return stopping_; });
    }
}

void NodeMembership::beat() {
    Status st = db_.heartbeat(hooks_.counters ? hooks_.counters() : NodeCounters{});
    std::lock_guard lock(mutex_);
    if (st) {
        last_beat_ = Clock::now();
        return;
    }
    if (st.error().stage == Stage::lease) {
        if (!taken_over_) {
            log::error(
                "this node's name was taken over by another process; its jobs belong to "
                "that process now",
                {{"error", st.error().message()}});
        }
        taken_over_ = st.error().reason;
        return;
    }
    log::warn("heartbeat not recorded; tried again shortly", {{"error", st.error().message()}});
}

void NodeMembership::adopt_orphans() {
    {
        std::lock_guard lock(mutex_);
        if (taken_over_) return;  // not a node any more: adopting would only take work from others
    }
    const int room = hooks_.room ? hooks_.room() : 0;
    if (room <= 0) return;
    auto adopted =
        db_.adopt_orphans(room, hooks_.spools ? hooks_.spools() : std::vector<std::string>{});
    if (!adopted) {
        log::warn("cannot look for jobs of stopped or silent nodes; tried again later",
                  {{"error", adopted.error().message()}});
        return;
    }
    for (const AdoptedJob& job : *adopted) {
        log::info("job adopted from another node", {{"upload_id", job.record.upload_id},
                                                    {"from_node", job.from_node},
                                                    {"spool", job.record.spool},
                                                    {"source", job.record.source_name},
                                                    {"status", job.record.status}});
        if (hooks_.adopt) hooks_.adopt(job);
    }
    std::lock_guard lock(mutex_);
    adopted_ += adopted->size();
}

std::optional<std::string> NodeMembership::problem() const {
    std::lock_guard lock(mutex_);
    if (taken_over_) return "this node's name was taken over: " + *taken_over_;
    const auto silent = Clock::now() - last_beat_;
    if (silent > lease_ / 2) {
        return "no heartbeat recorded for " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) +
               " s (other nodes adopt this node's jobs after " + std::to_string(lease_.count()) +
               " s)";
    }
    return std::nullopt;
}

std::uint64_t NodeMembership::adopted() const {
    std::lock_guard lock(mutex_);
    return adopted_;
}

}  // namespace imgspool
