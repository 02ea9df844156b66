// claim_rate: how many claims (and whole jobs' worth of job-record calls) per second a job
// record sustains, through the daemon's own JobDb code. For bench/REPORT.md (issue 13).
//
//   claim_rate sqlite FOLDER [SECONDS] [THREADS...]
//   claim_rate postgresql URL [SECONDS] [THREADS...]        (defaults: 5 s; 1 3 8 threads)
//
// Per thread count, two measurements of SECONDS each:
//   claim  insert_claim of a new file (a new claim key, so every claim wins)
//   job    the calls the daemon makes for one rendered job: insert_claim, find, start_attempt,
//          set_progress 10, set_source, cache_lookup, set_progress 60 and 90, complete (7
//          outputs, writing the derivative_cache row)
// SQLite: the threads share one SqliteJobDb, a fresh FOLDER/claims-<mode>-<threads>.db, as a
// daemon's workers share its one connection. PostgreSQL: each thread is a node of its own, with
// its own PgJobDb and connection, as one-worker daemons sharing the database are.
// Prints one JSON line per measurement.
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/job_db.hpp"
#include "store/pg/pg_job_db.hpp"
#include "store/sqlite_job_db.hpp"

namespace {

using namespace imgspool;
using Clock = std::chrono::steady_clock;

struct Failure {
    std::string what;
};

void check(const Status& st, const char* call) {
    if (!st) throw Failure{std::string(call) + ": " + st.error().message()};
}

template <class T>
T check(Result<T> r, const char* call) {
    if (!r) throw Failure{std::string(call) + ": " + r.error().message()};
    return std::move(r).value();
}

std::vector<StoredVariant> web_outputs(const std::string& id) {
    std::vector<StoredVariant> out;
    for (const char* variant : {"small", "medium", "large"}) {
        for (const char* format : {"jpeg", "webp"}) {
            const std::string key = "images/" + id + "/" + variant + "." + format;
            out.push_back({variant, format, key, "file:///store/" + key, 400, 400, 30000});
        }
    }
    const std::string key = "images/" + id + "/original.jpeg";
    out.push_back({"original", "jpeg", key, "file:///store/" + key, 4032, 3024, 3000000});
    return out;
}

// One claim, or one job's calls, for the n-th file of a thread.
void claim_only(JobDb& db, const std::string& id, const std::string& name) {
    if (!check(db.insert_claim(id, "bench", name, "web", "key:" + id), "insert_claim")) {
        throw Failure{"insert_claim: a new claim key was refused"};
    }
}

void whole_job(JobDb& db, const std::string& id, const std::string& name) {
    claim_only(db, id, name);
    (void)check(db.find(id), "find");
    check(db.start_attempt(id), "start_attempt");
    check(db.set_progress(id, 10), "set_progress");
    const std::string hash = "hash-" + id;
    check(db.set_source(id, hash, 3000000, 4032, 3024, "jpeg"), "set_source");
    (void)check(db.cache_lookup(hash, "fingerprint"), "cache_lookup");
    check(db.set_progress(id, 60), "set_progress");
    check(db.set_progress(id, 90), "set_progress");
    check(db.complete(id, web_outputs(id), "fingerprint", false, 300), "complete");
}

using Step = void (*)(JobDb&, const std::string&, const std::string&);

// Runs `step` on each thread's JobDb (dbs[t], or dbs[0] for all when there is one) until
// `seconds` have passed; returns the steps done per second.
double measure(const std::vector<JobDb*>& dbs, int threads, double seconds, Step step,
               const std::string& tag) {
    std::atomic<bool> stop{false};
    std::atomic<long> done{0};
    std::vector<std::string> errors(static_cast<std::size_t>(threads));
    std::vector<std::jthread> pool;
    const auto start = Clock::now();
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            JobDb& db = *dbs[dbs.size() == 1 ? 0 : static_cast<std::size_t>(t)];
            try {
                for (long n = 0; !stop; ++n) {
                    const std::string id = tag + "-t" + std::to_string(t) + "-" + std::to_string(n);
                    step(db, id, id + ".jpg");
                    ++done;
                }
            } catch (const Failure& f) {
                errors[static_cast<std::size_t>(t)] = f.what;
                stop = true;
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    pool.clear();  // joins
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    for (const std::string& e : errors) {
        if (!e.empty()) throw Failure{e};
    }
    return static_cast<double>(done) / elapsed;
}

// The job records of one measurement: one shared SQLite file, or a PgJobDb per thread.
std::vector<std::unique_ptr<JobDb>> open_dbs(const std::string& backend, const std::string& where,
                                             const std::string& tag, int threads) {
    std::vector<std::unique_ptr<JobDb>> dbs;
    if (backend == "sqlite") {
        const std::filesystem::path file = std::filesystem::path(where) / (tag + ".db");
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::filesystem::remove(file.string() + suffix);
        }
        dbs.push_back(check(SqliteJobDb::open(file, "bench"), "open"));
        return dbs;
    }
    for (int t = 0; t < threads; ++t) {
        pg::DatabaseSettings settings;
        settings.url = where;
        dbs.push_back(
            check(pg::PgJobDb::open(settings, 1, tag + "-node" + std::to_string(t)), "open"));
    }
    return dbs;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() < 2 || (args[0] != "sqlite" && args[0] != "postgresql")) {
        std::fprintf(stderr,
                     "usage: claim_rate sqlite FOLDER|postgresql URL [SECONDS] [THREADS...]\n");
        return 2;
    }
    const std::string run = std::to_string(::getpid());
    try {
        const double seconds = args.size() > 2 ? std::stod(args[2]) : 5.0;
        std::vector<int> thread_counts;
        for (std::size_t i = 3; i < args.size(); ++i) thread_counts.push_back(std::stoi(args[i]));
        if (thread_counts.empty()) thread_counts = {1, 3, 8};
        for (int threads : thread_counts) {
            for (const auto& [mode, step] : {std::pair<const char*, Step>{"claim", claim_only},
                                             std::pair<const char*, Step>{"job", whole_job}}) {
                const std::string tag =
                    "claims-" + run + "-" + mode + "-" + std::to_string(threads);
                const auto owned = open_dbs(args[0], args[1], tag, threads);
                std::vector<JobDb*> dbs;
                for (const auto& db : owned) dbs.push_back(db.get());
                const double rate = measure(dbs, threads, seconds, step, tag);
                std::printf(
                    "{\"backend\": \"%s\", \"threads\": %d, \"mode\": \"%s\", \"seconds\": %.1f, "
                    "\"per_s\": %.1f}\n",
                    args[0].c_str(), threads, mode, seconds, rate);
                std::fflush(stdout);
            }
        }
    } catch (const Failure& f) {
        std::fprintf(stderr, "claim_rate: %s\n", f.what.c_str());
        return 1;
    } catch (const std::exception& e) {  // a bad number argument, a folder that cannot be used
        std::fprintf(stderr, "claim_rate: %s\n", e.what());
        return 2;
    }
    return 0;
}
