// File names in the database: upload_jobs.source_name holds printable_name() of the bytes, and
// reads back exactly as written, also through the views `imgspool status` shows.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/printable_name.hpp"
#include "store/sqlite_job_db.hpp"
#include "tests/store/job_db_reads.hpp"
#include "tests/store/temp_dir.hpp"

namespace imgspool {
namespace {

TEST(JobDbNames, RoundTripsPrintableNames) {
    test::TempDir dir;
    auto db = SqliteJobDb::open(dir.path() / "imgspool.db");
    ASSERT_TRUE(db.ok()) << db.error().message();
    const std::vector<std::string> names = {"\xff\xfe.jpg",
                                            "caf\xe9.jpg",
                                            "sub \xff/new\nline.jpg",
                                            std::string("ctl\x01\x1b.png"),
                                            "-rf.jpg",
                                            std::string(251, 'L') + ".jpg"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string id = "job" + std::to_string(i);
        const std::string stored = printable_name(names[i]);
        ASSERT_TRUE(is_valid_utf8(stored));
        ASSERT_TRUE(db.value()->insert_job(id, "s", stored, "web").ok());
        const auto rec = find_job(*db.value(), id);
        ASSERT_TRUE(rec) << id;
        EXPECT_EQ(rec->source_name, stored) << hex_bytes(names[i]);
    }
    // The two names that differ only in bytes outside UTF-8 stay different.
    EXPECT_EQ(find_job(*db.value(), "job0")->source_name, "\\xff\\xfe.jpg");
    EXPECT_EQ(find_job(*db.value(), "job1")->source_name, "caf\\xe9.jpg");

    auto in_flight = db.value()->jobs_in_flight();
    ASSERT_TRUE(in_flight.ok());
    ASSERT_EQ(in_flight->size(), names.size());
    ASSERT_TRUE(db.value()->fail("job2", make_error(Stage::validate, "not an image")).ok());
    auto failures = db.value()->failures_today();
    ASSERT_TRUE(failures.ok());
    ASSERT_EQ(failures->size(), 1u);
    EXPECT_EQ(failures->front().source_name, "sub \\xff/new\nline.jpg");
}

}  // namespace
}  // namespace imgspool
