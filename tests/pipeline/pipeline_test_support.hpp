// What the pipeline tests share: an in-memory store that can be told to fail, JPEGs made with
// libvips (init_vips must have run), and a fixture with a spool and a SQLite job record.
#pragma once

#include <gtest/gtest.h>
#include <vips/vips.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"
#include "store/object_store.hpp"
#include "store/sqlite_job_db.hpp"

namespace imgspool::test {

class FakeStore final : public ObjectStore {
  public:
    enum class Failure { none, permanent, transient };

    Status put_all(const std::vector<PutObject>& objects) override {
        std::lock_guard lock(mutex);
        ++calls;
        if (fail == Failure::permanent) {
            return make_error(Stage::store,
                              "PUT refused: HTTP 503 SlowDown (gave up after 5 attempts)");
        }
        if (fail == Failure::transient) {
            return make_transient(Stage::store, "PUT failed: connection refused");
        }
        for (const PutObject& o : objects) objects_[o.key] = std::string(o.bytes);
        return ok_status();
    }
    Status remove_all(const std::vector<std::string>& keys) override {
        std::lock_guard lock(mutex);
        for (const std::string& key : keys) objects_.erase(key);
        return ok_status();
    }
    std::string url_for(const std::string& key) const override { return "https://cdn.test/" + key; }
    Status check() override { return ok_status(); }
    std::string describe() const override { return "fake"; }

    std::mutex mutex;
    int calls = 0;
    Failure fail = Failure::none;
    std::map<std::string, std::string> objects_;
};

inline std::string make_jpeg(int w, int h, int seed) {
    VipsImage* img = nullptr;
    EXPECT_EQ(vips_xyz(&img, w, h, nullptr), 0);
    VipsImage* sum = nullptr;
    EXPECT_EQ(vips_linear1(img, &sum, 1.0, seed, nullptr), 0);
    VipsImage* u8 = nullptr;
    EXPECT_EQ(vips_cast_uchar(sum, &u8, nullptr), 0);
    void* buf = nullptr;
    size_t len = 0;
    EXPECT_EQ(vips_jpegsave_buffer(u8, &buf, &len, "Q", 90, nullptr), 0);
    std::string out(static_cast<char*>(buf), len);
    g_free(buf);
    g_object_unref(u8);
    g_object_unref(sum);
    g_object_unref(img);
    return out;
}

// A temp folder with one spool and a SQLite job record, the built-in profiles and a FakeStore.
// drop() puts a file in work/<id>/ as a claim would and records its pending job.
class PipelineFixture : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/imgspool-pipeline-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        spool_ = SpoolLayout{"photos", dir_ / "spool", "web"};
        auto db = SqliteJobDb::open(dir_ / "imgspool.db");
        ASSERT_TRUE(db.ok()) << db.error().message();
        db_ = std::move(db).value();
        settings_.profiles = builtin_profiles();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    Job drop(const std::string& relative, const std::string& bytes) {
        Job job{"id-" + std::to_string(next_++), spool_, {}, relative, std::nullopt, 0};
        job.work_path = spool_.work() / job.upload_id / relative;
        std::filesystem::create_directories(job.work_path.parent_path());
        std::ofstream(job.work_path, std::ios::binary) << bytes;
        EXPECT_TRUE(db_->insert_job(job.upload_id, spool_.name, relative, spool_.profile).ok());
        return job;
    }

    std::filesystem::path dir_;
    SpoolLayout spool_;
    std::unique_ptr<JobDb> db_;
    PipelineSettings settings_;
    FakeStore store_;
    int next_ = 1;
};

}  // namespace imgspool::test
