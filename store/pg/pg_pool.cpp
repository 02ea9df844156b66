#include "store/pg/pg_pool.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "store/pg/database_url.hpp"

namespace imgspool::pg {

namespace {

using Clock = std::chrono::steady_clock;

long long whole_seconds(Clock::duration d, bool round_up) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return round_up ? (ms + 999) / 1000 : ms / 1000;
}

}  // namespace

Result<std::unique_ptr<ConnectionPool>> ConnectionPool::open(const DatabaseSettings& settings,
                                                             int size,
                                                             std::string application_name) {
    if (!PQisthreadsafe()) {
        return make_error(Stage::config,
                          "this libpq is not thread-safe; imgspool needs one that is");
    }
    if (auto valid = validate(settings); !valid) return valid.error();
    if (settings.url.empty()) {
        return make_error(Stage::config, "no PostgreSQL connection string was given");
    }
    auto first = Connection::open(settings, application_name);
    if (!first) {
        return make_error(Stage::config,
                          "cannot use the database " + describe_database(settings.url) + ": " +
                              first.error().reason +
                              "; start the server or correct [database] url (or DATABASE_URL)");
    }
    auto pool = std::make_unique<ConnectionPool>(Private{}, settings, std::max(size, 1),
                                                 std::move(application_name));
    pool->connections_[0] = std::move(first.value());
    return pool;
}

ConnectionPool::ConnectionPool(Private, DatabaseSettings settings, int size,
                               std::string application_name)
    : settings_(std::move(settings)),
      application_name_(std::move(application_name)),
      description_(describe_database(settings_.url)),
      connections_(static_cast<std::size_t>(size)),
      busy_(static_cast<std::size_t>(size), false),
      random_(std::random_device{}()) {}

void ConnectionPool::on_recovered(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    on_recovered_ = std::move(callback);
}

std::uint64_t ConnectionPool::reconnects() const {
    std::lock_guard lock(mutex_);
    return reconnects_;
}

std::optional<Error> ConnectionPool::unreachable(Clock::time_point now) const {
    if (!down_ || now >= next_try_) return std::nullopt;
    return make_transient(
        Stage::commit,
        "database unreachable since " + std::to_string(whole_seconds(now - down_since_, false)) +
            " s (next try in " + std::to_string(whole_seconds(next_try_ - now, true)) + " s)");
}

void ConnectionPool::note_unreachable(Clock::time_point now) {
    if (!down_) {
        down_ = true;
        down_since_ = now;
        backoff_ = kFirstBackoff;
    } else {
        backoff_ = std::min(backoff_ * 2, kLongestBackoff);
    }
    // ±20 %: several daemons that lost the same server do not all come back in step.
    std::uniform_int_distribution<long long> jitter(backoff_.count() * 8 / 10,
                                                    backoff_.count() * 12 / 10);
    next_try_ = now + std::chrono::milliseconds(jitter(random_));
}

std::chrono::milliseconds ConnectionPool::retry_pause() {
    std::lock_guard lock(mutex_);
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 50)(random_));
}

std::size_t ConnectionPool::pick_free_slot() const {
    // Free slots are touched by no lease holder, so their connections can be read here.
    std::optional<std::size_t> any;
    for (std::size_t i = 0; i < busy_.size(); ++i) {
        if (busy_[i]) continue;
        if (connections_[i] && !connections_[i]->broken()) return i;
        if (!any) any = i;
    }
    return *any;
}

Result<ConnectionPool::Lease> ConnectionPool::checkout() {
    std::unique_lock lock(mutex_);
    if (auto fast = unreachable(Clock::now())) return *fast;
    const auto first_free = [&] { return std::find(busy_.begin(), busy_.end(), false); };
    if (!freed_.wait_for(lock, kCheckoutWait, [&] { return first_free() != busy_.end(); })) {
        return make_transient(Stage::commit, "database connection pool exhausted (" +
                                                 std::to_string(busy_.size()) +
                                                 " connections busy for " +
                                                 std::to_string(kCheckoutWait.count()) + " s)");
    }
    const auto slot = pick_free_slot();
    auto& conn = connections_[slot];
    const auto give_back = [&] {
        busy_[slot] = false;
        freed_.notify_one();
    };
    busy_[slot] = true;

    // Another thread may have found the server gone while this one waited.
    const auto now = Clock::now();
    if (auto fast = unreachable(now)) {
        give_back();
        return *fast;
    }
    // After the backoff this call is the probe, the others keep failing fast meanwhile; it ends
    // the outage by reconnecting or, on a connection that never broke, in check_in().
    if (down_) next_try_ = now + backoff_;
    if (conn && !conn->broken()) return Lease(this, slot);

    const bool reconnect = conn.has_value();
    lock.unlock();

    Status connected = ok_status();
    if (reconnect) {
        connected = conn->reset();
    } else if (auto made = Connection::open(settings_, application_name_); made) {
        conn = std::move(made.value());
    } else {
        connected = made.error();
    }

    lock.lock();
    if (!connected) {
        note_unreachable(Clock::now());
        give_back();
        const auto next_try_s = whole_seconds(next_try_ - Clock::now(), true);
        log::error("database unreachable", {{"database", description_},
                                            {"reason", connected.error().reason},
                                            {"next_try_s", next_try_s}});
        return make_transient(Stage::commit,
                              "database unreachable since " +
                                  std::to_string(whole_seconds(Clock::now() - down_since_, false)) +
                                  " s (next try in " + std::to_string(next_try_s) +
                                  " s): " + connected.error().reason);
    }
    if (reconnect) ++reconnects_;
    const auto recovered = end_outage();
    lock.unlock();
    if (recovered) recovered();
    return Lease(this, slot);
}

std::function<void()> ConnectionPool::end_outage() {
    if (!down_) return {};
    log::info(
        "database reachable again",
        {{"database", description_}, {"down_s", whole_seconds(Clock::now() - down_since_, false)}});
    down_ = false;
    return on_recovered_;
}

void ConnectionPool::check_in(std::size_t slot) {
    auto& conn = connections_[slot];
    // A function that returned inside a transaction (an early error return without a
    // Transaction object) must not hand its open transaction to the next caller.
    if (conn && !conn->broken() && conn->in_transaction()) (void)conn->exec_sql("ROLLBACK");
    // A connection still whole after the call: the server answered.
    const bool answered = conn && !conn->broken();
    std::function<void()> recovered;
    {
        std::lock_guard lock(mutex_);
        busy_[slot] = false;
        if (answered) recovered = end_outage();
    }
    freed_.notify_one();
    if (recovered) recovered();
}

ConnectionPool::Lease::~Lease() {
    if (pool_) pool_->check_in(slot_);
}

}  // namespace imgspool::pg
