// The same bytes dropped again reuse the stored derivatives: nothing is rendered or stored.
#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/web_outputs.hpp"

namespace imgspool::it {
namespace {

using CacheTest = SpoolFixture;

TEST_F(CacheTest, DuplicateDropIsACacheHitWithTheFirstJobsUrls) {
    const std::string source = make_jpeg({.width = 1000, .height = 800, .seed = 50});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));

    write_file(inbox() / "first.jpg", source);
    const std::optional<Row> first = wait_complete("first.jpg");
    ASSERT_TRUE(first);
    const std::string first_id = first->at("id");
    EXPECT_EQ(first->at("cache_hit"), "0");
    ASSERT_TRUE(web_outputs_ok(objects(), first_id, "jpeg", 1000, 800));
    const std::set<std::string> first_urls = recorded_urls(*this, first_id);
    EXPECT_EQ(first_urls, expected_urls(first_id, "jpeg"));

    write_file(inbox() / "again under another name.jpg", source);
    const std::optional<Row> second = wait_complete("again under another name.jpg");
    ASSERT_TRUE(second) << "the duplicate was not completed";
    const std::string second_id = second->at("id");
    EXPECT_NE(second_id, first_id) << "every drop is its own job";
    EXPECT_EQ(second->at("cache_hit"), "1");
    EXPECT_EQ(second->at("source_hash"), first->at("source_hash"));
    EXPECT_EQ(recorded_urls(*this, second_id), first_urls);
    EXPECT_TRUE(files_under(objects() / "images" / second_id).empty())
        << "objects were stored again for the duplicate";
    EXPECT_EQ(read_file(done() / "again under another name.jpg"), source);
    // The first job's objects are untouched and still complete.
    EXPECT_TRUE(web_outputs_ok(objects(), first_id, "jpeg", 1000, 800));
}

// A custom profile with one cover variant of the given size, in the source format.
DaemonConfig thumbs_profile(int side) {
    DaemonConfig c;
    c.profile = "thumbs";
    c.extra_toml =
        "\n[profiles.thumbs]\n[[profiles.thumbs.variant]]\n"
        "name = \"small\"\nwidth = " +
        std::to_string(side) + "\nheight = " + std::to_string(side) +
        "\nfit = \"cover\"\n"
        "formats = [\"source\"]\n";
    return c;
}

TEST_F(CacheTest, ChangedProfileSettingsRenderAfresh) {
    const std::string source = make_jpeg({.width = 1000, .height = 800, .seed = 51});
    write_config(thumbs_profile(160));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "one.jpg", source);
    const std::optional<Row> first = wait_complete("one.jpg");
    ASSERT_TRUE(first);
    EXPECT_EQ(read_image(objects() / "images" / first->at("id") / "small.jpg").width, 160);
    kill_daemon();

    // Same bytes, but the profile's settings changed: its fingerprint changed, no reuse.
    write_config(thumbs_profile(170));
    start_daemon();
    write_file(inbox() / "two.jpg", source);
    const std::optional<Row> second = wait_complete("two.jpg");
    ASSERT_TRUE(second);
    EXPECT_EQ(second->at("cache_hit"), "0");
    const ReadBack small = read_image(objects() / "images" / second->at("id") / "small.jpg");
    EXPECT_TRUE(small.ok) << small.error;
    EXPECT_EQ(small.width, 170);
    EXPECT_EQ(small.height, 170);

    // And the same bytes once more under the unchanged profile: a hit again.
    write_file(inbox() / "three.jpg", source);
    const std::optional<Row> third = wait_complete("three.jpg");
    ASSERT_TRUE(third);
    EXPECT_EQ(third->at("cache_hit"), "1");
    EXPECT_EQ(recorded_urls(*this, third->at("id")), recorded_urls(*this, second->at("id")));
}

}  // namespace
}  // namespace imgspool::it
