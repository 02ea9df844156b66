#include "pipeline/pipeline_settings.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/local_store.hpp"

namespace imgspool {
namespace {

PipelineSettings numbered(int n) {
    PipelineSettings s;
    s.key_template = "k" + std::to_string(n) + "/{upload_id}/{variant}.{ext}";
    s.limits.max_width = n;
    return s;
}

std::shared_ptr<ObjectStore> store_at(int n) {
    return std::make_shared<LocalStore>("/nonexistent/store-" + std::to_string(n), "");
}

TEST(SwappableSettings, ASnapshotOutlivesASwapUnchanged) {
    SwappableSettings current(numbered(1), store_at(1));
    const std::shared_ptr<const PipelineSettings> held = current.settings();
    const std::shared_ptr<ObjectStore> held_store = current.store();
    current.set_settings(std::make_shared<const PipelineSettings>(numbered(2)));
    current.set_store(store_at(2));
    EXPECT_EQ(held->limits.max_width, 1);
    EXPECT_EQ(held->key_template, "k1/{upload_id}/{variant}.{ext}");
    EXPECT_EQ(held_store->describe(), "local:/nonexistent/store-1");
    EXPECT_EQ(current.settings()->limits.max_width, 2);
    EXPECT_EQ(current.store()->describe(), "local:/nonexistent/store-2");
}

TEST(SwappableSettings, TheOldStoreIsReleasedByItsLastHolder) {
    SwappableSettings current(numbered(1), store_at(1));
    std::shared_ptr<ObjectStore> job_holds = current.store();
    const std::weak_ptr<ObjectStore> old = job_holds;
    current.set_store(store_at(2));
    EXPECT_FALSE(old.expired());  // a job still running on it
    job_holds.reset();
    EXPECT_TRUE(old.expired());
}

// Readers (jobs starting) take snapshots while a writer (a reload) swaps both many times: every
// snapshot is whole (its fields belong together) and readable while it is held. Run under TSan.
TEST(SwappableSettings, SnapshotsTakenWhileSwappingAreWhole) {
    SwappableSettings current(numbered(0), store_at(0));
    std::atomic<bool> done{false};
    std::atomic<int> torn{0};
    std::atomic<long> reads{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; ++r) {
        readers.emplace_back([&] {
            while (!done) {
                const auto s = current.settings();
                const auto store = current.store();
                if (s->key_template !=
                    "k" + std::to_string(s->limits.max_width) + "/{upload_id}/{variant}.{ext}") {
                    ++torn;
                }
                if (store->describe().rfind("local:/nonexistent/store-", 0) != 0) ++torn;
                ++reads;
            }
        });
    }
    for (int n = 1; n <= 2000; ++n) {
        current.set_settings(std::make_shared<const PipelineSettings>(numbered(n)));
        current.set_store(store_at(n));
    }
    while (reads < 1000) std::this_thread::yield();
    done = true;
    for (std::thread& t : readers) t.join();
    EXPECT_EQ(torn.load(), 0);
    EXPECT_EQ(current.settings()->limits.max_width, 2000);
    EXPECT_EQ(current.store()->describe(), "local:/nonexistent/store-2000");
}

}  // namespace
}  // namespace imgspool
