// A fixed number of PostgreSQL connections shared by the daemon's threads (design §2.3).
// Connections are made when first needed, except the first, made by open() so that a wrong URL or
// password stops the daemon at start. A broken connection is reset on its next use; while the
// server cannot be reached, a pool-wide backoff (1 s doubling to 10 s) makes calls fail at once
// with a transient error instead of each waiting for connect_timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "store/pg/database_settings.hpp"
#include "store/pg/pg_errors.hpp"
#include "store/pg/pg_handles.hpp"

namespace imgspool::pg {

class ConnectionPool {
    struct Private {};  // keeps the constructor for open() while make_unique can reach it

  public:
    // Transaction functions that lose a race (40001, 40P01) run again this many times.
    static constexpr int kRetriesInPlace = 3;
    // How long a call waits for a free connection before a transient "pool exhausted".
    static constexpr std::chrono::seconds kCheckoutWait{5};
    // The backoff between reconnect attempts while the server cannot be reached: it starts at
    // the first, doubles up to the longest, and each wait is drawn within ±20 % of it.
    static constexpr std::chrono::milliseconds kFirstBackoff{1000};
    static constexpr std::chrono::milliseconds kLongestBackoff{10000};
    // The longest a pool goes without trying the server again once it is back.
    static constexpr std::chrono::milliseconds kLongestReconnectWait = kLongestBackoff * 12 / 10;

    // Connects once; a failure is a Stage::config error naming host, port, dbname and user (never
    // the password) with libpq's reason. `size` >= 1.
    static Result<std::unique_ptr<ConnectionPool>> open(const DatabaseSettings& settings, int size,
                                                        std::string application_name);

    ConnectionPool(Private, DatabaseSettings settings, int size, std::string application_name);

    // Runs f(Connection&) -> Result<T> on a connection of its own. A function whose error is a
    // serialization failure or deadlock runs again (up to kRetriesInPlace times, 10-50 ms apart);
    // f must therefore do its whole transaction itself. Any other error is returned as is.
    template <class F>
    auto run(F&& f) -> decltype(f(std::declval<Connection&>()));

    // Called (on the thread of the call that found it) when the server answers again after
    // calls failed with "database unreachable": the daemon releases its deferred jobs then.
    void on_recovered(std::function<void()> callback);

    // Connections re-established after they broke (the metric imgspool_db_reconnects_total).
    std::uint64_t reconnects() const;
    int size() const { return static_cast<int>(connections_.size()); }

  private:
    // A checked-out connection; gives it back (rolled back if a transaction was left open).
    class Lease {
      public:
        Lease(ConnectionPool* pool, std::size_t slot) : pool_(pool), slot_(slot) {}
        Lease(Lease&& other) noexcept
            : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_) {}
        Lease& operator=(Lease&&) = delete;
        ~Lease();
        Connection& connection() { return *pool_->connections_[slot_]; }

      private:
        ConnectionPool* pool_;
        std::size_t slot_;
    };

    Result<Lease> checkout();
    // Under mutex_, with a slot free: a whole connection first, else an empty or broken one.
    std::size_t pick_free_slot() const;
    void check_in(std::size_t slot);
    // Under mutex_: the fail-fast error while the backoff runs, if it does.
    std::optional<Error> unreachable(std::chrono::steady_clock::time_point now) const;
    void note_unreachable(std::chrono::steady_clock::time_point now);
    // Under mutex_: clears the outage, if any, and returns the callback to run after unlocking.
    std::function<void()> end_outage();
    std::chrono::milliseconds retry_pause();

    const DatabaseSettings settings_;
    const std::string application_name_;
    const std::string description_;  // describe_database(url), for log lines

    mutable std::mutex mutex_;
    std::condition_variable freed_;
    // A slot's connection is touched only by the thread holding its lease; busy_ and the backoff
    // state below are guarded by mutex_.
    std::vector<std::optional<Connection>> connections_;
    std::vector<bool> busy_;
    bool down_ = false;
    std::chrono::steady_clock::time_point down_since_;
    std::chrono::steady_clock::time_point next_try_;
    std::chrono::milliseconds backoff_{0};
    std::minstd_rand random_;
    std::uint64_t reconnects_ = 0;
    std::function<void()> on_recovered_;
};

template <class F>
auto ConnectionPool::run(F&& f) -> decltype(f(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
        {
            auto lease = checkout();
            if (!lease) return lease.error();
            auto result = f(lease->connection());
            if (result.ok() || !is_retry_in_place(result.error()) || attempt == kRetriesInPlace) {
                return result;
            }
        }
        std::this_thread::sleep_for(retry_pause());
    }
}

}  // namespace imgspool::pg
