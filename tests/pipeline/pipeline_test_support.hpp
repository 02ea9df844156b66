// What the pipeline tests share: an in-memory store that can be told to fail, and JPEGs made
// with libvips (init_vips must have run).
#pragma once

#include <gtest/gtest.h>
#include <vips/vips.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "store/object_store.hpp"

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

}  // namespace imgspool::test
