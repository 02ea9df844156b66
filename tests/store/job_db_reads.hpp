// The job record's reads for tests: a read error fails the test and reads as nothing.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/job_db.hpp"

namespace imgspool {

inline std::optional<JobRecord> find_job(JobDb& db, const std::string& upload_id) {
    auto found = db.find(upload_id);
    EXPECT_TRUE(found) << found.error().message();
    return found ? std::move(*found) : std::nullopt;
}

// The cached outputs only; cache_set gives the placeholders too.
inline std::optional<CachedSet> cache_set(JobDb& db, const std::string& hash,
                                          const std::string& fingerprint) {
    auto cached = db.cache_lookup(hash, fingerprint);
    EXPECT_TRUE(cached) << cached.error().message();
    return cached ? std::move(*cached) : std::nullopt;
}

inline std::optional<std::vector<StoredVariant>> lookup_cache(JobDb& db, const std::string& hash,
                                                              const std::string& fingerprint) {
    std::optional<CachedSet> set = cache_set(db, hash, fingerprint);
    return set ? std::optional(std::move(set->outputs)) : std::nullopt;
}

inline std::map<std::string, std::int64_t> counts_of(JobDb& db) {
    auto counts = db.counts_by_status();
    EXPECT_TRUE(counts) << counts.error().message();
    return counts ? std::move(*counts) : std::map<std::string, std::int64_t>();
}

inline std::vector<JobRecord> unfinished_of(JobDb& db) {
    auto jobs = db.unfinished();
    EXPECT_TRUE(jobs) << jobs.error().message();
    return jobs ? std::move(*jobs) : std::vector<JobRecord>();
}

}  // namespace imgspool
