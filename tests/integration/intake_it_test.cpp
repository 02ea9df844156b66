// How files get into a spool: copy, rename, slow writers, subfolders, temporary names, special
// files, and the start-up scan and periodic rescan. Each test runs the real daemon.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/web_outputs.hpp"

namespace imgspool::it {
namespace {

using IntakeTest = SpoolFixture;

TEST_F(IntakeTest, DropByCopyRendersSevenStrippedOutputsAndRecordsTheJob) {
    const std::string source = make_jpeg({.width = 1200, .height = 900, .seed = 1});
    const ReadBack src = read_image_buffer(source);
    ASSERT_TRUE(src.ok) << src.error;
    ASSERT_TRUE(src.has_exif) << "test setup: the source must carry EXIF";

    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "photo.jpg", source);

    const std::optional<Row> job = wait_complete("photo.jpg");
    ASSERT_TRUE(job) << "photo.jpg did not reach done/ with a complete job";
    Row j = *job;
    EXPECT_EQ(read_file(done() / "photo.jpg"), source) << "the original must be moved unchanged";
    EXPECT_EQ(files_under(inbox()), std::vector<std::string>{});
    EXPECT_TRUE(wait_for([&] { return files_under(work()).empty(); }, 10s))
        << "work/ still holds files";
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});

    EXPECT_EQ(j["spool"], "main");
    EXPECT_EQ(j["profile"], "web");
    EXPECT_EQ(j["progress"], "100");
    EXPECT_EQ(j["width"], "1200");
    EXPECT_EQ(j["height"], "900");
    EXPECT_EQ(j["format"], "jpeg");
    EXPECT_EQ(j["original_size"], std::to_string(source.size()));
    EXPECT_EQ(j["source_hash"], sha256_hex(source));
    EXPECT_EQ(j["cache_hit"], "0");
    EXPECT_EQ(j["error"], "");
    EXPECT_NE(j["completed_at"], "");
    EXPECT_EQ(jobs_for("photo.jpg").size(), 1u);

    const std::string id = j["id"];
    EXPECT_TRUE(web_outputs_ok(objects(), id, "jpeg", 1200, 900));
    EXPECT_EQ(recorded_urls(*this, id), expected_urls(id, "jpeg"));
    EXPECT_TRUE(daemon_running());
}

TEST_F(IntakeTest, ExifOrientationIsAppliedToTheOutputs) {
    // Stored 1200x900 with orientation 6 (rotate 90° clockwise): shown as 900x1200.
    const std::string source = make_jpeg({.width = 1200, .height = 900, .seed = 2}, 90, 6);
    ASSERT_EQ(read_image_buffer(source).orientation, 6);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "portrait.jpg", source);
    const std::optional<Row> job = wait_complete("portrait.jpg");
    ASSERT_TRUE(job);
    const std::string id = job->at("id");
    EXPECT_TRUE(web_outputs_ok(objects(), id, "jpeg", 900, 1200));
}

TEST_F(IntakeTest, DropByRenameFromOutsideTheInbox) {
    const std::string source = make_jpeg({.width = 900, .height = 820, .seed = 3});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(outside() / "moved.jpg", source);
    stdfs::rename(outside() / "moved.jpg", inbox() / "moved.jpg");

    const std::optional<Row> job = wait_complete("moved.jpg");
    ASSERT_TRUE(job);
    EXPECT_EQ(read_file(done() / "moved.jpg"), source);
    EXPECT_EQ(jobs_for("moved.jpg").size(), 1u);
    EXPECT_TRUE(web_outputs_ok(objects(), job->at("id"), "jpeg", 900, 820));
}

TEST_F(IntakeTest, SlowWriterIsProcessedOnceWhenFinished) {
    // ~300 KB written in 25 pieces, one every 100 ms (more often than settle_ms = 300).
    const std::string source = make_jpeg({.width = 700, .height = 500, .seed = 4});
    ASSERT_GT(source.size(), 200'000u) << "test setup: the slow file should be a few 100 KB";
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));

    const int fd = ::open((inbox() / "slow.jpg").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0);
    constexpr size_t kPieces = 25;
    const size_t piece = (source.size() + kPieces - 1) / kPieces;
    for (size_t off = 0; off < source.size(); off += piece) {
        const size_t n = std::min(piece, source.size() - off);
        ASSERT_EQ(::write(fd, source.data() + off, n), static_cast<ssize_t>(n));
        std::this_thread::sleep_for(100ms);
        // Nothing may be claimed while the writer is still busy.
        ASSERT_TRUE(stdfs::exists(inbox() / "slow.jpg"))
            << "slow.jpg was taken from inbox/ after " << off + n << " of " << source.size()
            << " bytes";
    }
    ::close(fd);

    const std::optional<Row> job = wait_complete("slow.jpg");
    ASSERT_TRUE(job) << "slow.jpg was not completed";
    EXPECT_EQ(read_file(done() / "slow.jpg"), source);
    // Give any second pickup (a rescan, a late event) time to happen, then count.
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(jobs_for("slow.jpg").size(), 1u);
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_EQ(files_under(done()), std::vector<std::string>{"slow.jpg"});
}

TEST_F(IntakeTest, SubfolderCreatedAfterStartIsWatched) {
    // No periodic rescan within the test's time: only inotify can find the file.
    write_config({.rescan_s = 3600});
    start_daemon();
    wait_until_watching();
    if (HasFatalFailure()) return;

    stdfs::create_directories(inbox() / "a" / "b");
    write_file(inbox() / "a" / "b" / "x.jpg", make_jpeg({.width = 400, .height = 300, .seed = 5}));
    // A second file in a folder the daemon sees only after its parent is watched.
    stdfs::create_directory(inbox() / "a" / "c");
    write_file(inbox() / "a" / "c" / "y.jpg", make_jpeg({.width = 400, .height = 300, .seed = 6}));

    EXPECT_TRUE(wait_complete("a/b/x.jpg")) << "a/b/x.jpg did not reach done/a/b/x.jpg";
    EXPECT_TRUE(wait_complete("a/c/y.jpg")) << "a/c/y.jpg did not reach done/a/c/y.jpg";
}

TEST_F(IntakeTest, TemporaryNamesWaitUntilRenamed) {
    start_daemon();
    wait_until_watching();
    if (HasFatalFailure()) return;

    // temp name -> final name
    const std::vector<std::pair<std::string, std::string>> names = {
        {"a.jpg.part", "a.jpg"},       {"b.jpg.filepart", "b.jpg"}, {"c.jpg.tmp", "c.jpg"},
        {"d.jpg.crdownload", "d.jpg"}, {".e.jpg.Xy12Ab", "e.jpg"},  {".hidden.jpg", "hidden.jpg"}};
    std::map<std::string, std::string> bytes;
    unsigned seed = 10;
    for (const auto& [temp, final_name] : names) {
        bytes[temp] = make_jpeg({.width = 320, .height = 240, .seed = seed++});
        write_file(inbox() / temp, bytes[temp]);
    }
    // Events are handled in order, and with rescan_s = 1 a few rescans pass meanwhile.
    write_file(inbox() / "after.jpg", make_jpeg({.width = 320, .height = 240, .seed = seed++}));
    ASSERT_TRUE(wait_complete("after.jpg"));
    std::this_thread::sleep_for(2500ms);

    for (const auto& [temp, final_name] : names) {
        EXPECT_TRUE(stdfs::exists(inbox() / temp)) << temp << " was taken from inbox/";
        if (stdfs::exists(inbox() / temp)) {
            EXPECT_EQ(read_file(inbox() / temp), bytes[temp]) << temp << " was changed";
        }
        EXPECT_TRUE(jobs_for(temp).empty()) << temp << " got a job";
    }
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});

    for (const auto& [temp, final_name] : names) {
        stdfs::rename(inbox() / temp, inbox() / final_name);
    }
    for (const auto& [temp, final_name] : names) {
        const std::optional<Row> job = wait_complete(final_name);
        EXPECT_TRUE(job) << final_name << " (renamed from " << temp << ") was not processed";
        if (job) {
            EXPECT_EQ(read_file(done() / final_name), bytes[temp]);
        }
    }
}

TEST_F(IntakeTest, SymlinksAndFifosAreNeverReadThrough) {
    const std::string target_bytes = make_jpeg({.width = 320, .height = 240, .seed = 20});
    write_file(outside() / "target.jpg", target_bytes);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));

    stdfs::create_symlink(outside() / "target.jpg", inbox() / "link.jpg");
    ASSERT_EQ(::mkfifo((inbox() / "pipe.jpg").c_str(), 0644), 0);
    write_file(inbox() / "good.jpg", make_jpeg({.width = 320, .height = 240, .seed = 21}));

    ASSERT_TRUE(wait_complete("good.jpg")) << "the daemon stopped working after a FIFO/symlink";
    std::this_thread::sleep_for(2500ms);  // a few rescans (rescan_s = 1)

    // The target is untouched and still where it was.
    ASSERT_TRUE(stdfs::is_regular_file(stdfs::symlink_status(outside() / "target.jpg")));
    EXPECT_EQ(read_file(outside() / "target.jpg"), target_bytes);
    for (const std::string name : {"link.jpg", "pipe.jpg"}) {
        EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(done() / name))) << name << " in done/";
        for (Row& r : jobs_for(name)) {
            EXPECT_NE(r["status"], "complete") << name << " was processed as an image";
        }
        // Left in inbox/ or moved (as what it is) to failed/ with a reason.
        const bool in_inbox = stdfs::exists(stdfs::symlink_status(inbox() / name));
        const bool in_failed = stdfs::exists(stdfs::symlink_status(failed() / name));
        EXPECT_TRUE(in_inbox || in_failed) << name << " vanished";
        if (in_failed) {
            EXPECT_TRUE(stdfs::exists(failed() / (name + ".error.json")))
                << name << " in failed/ without a reason";
        }
    }
    // Whatever happened, it still is a link and a FIFO (nothing was copied through them).
    const stdfs::path link = stdfs::exists(stdfs::symlink_status(inbox() / "link.jpg"))
                                 ? inbox() / "link.jpg"
                                 : failed() / "link.jpg";
    EXPECT_TRUE(stdfs::is_symlink(link));
    const stdfs::path fifo = stdfs::exists(stdfs::symlink_status(inbox() / "pipe.jpg"))
                                 ? inbox() / "pipe.jpg"
                                 : failed() / "pipe.jpg";
    EXPECT_TRUE(stdfs::is_fifo(stdfs::symlink_status(fifo)));
    EXPECT_EQ(query("SELECT id FROM upload_jobs WHERE status = 'complete'").size(), 1u)
        << "only good.jpg may have been processed";
}

TEST_F(IntakeTest, FileInInboxBeforeStartIsFoundByTheStartUpScan) {
    stdfs::create_directories(inbox() / "sub");
    const std::string source = make_jpeg({.width = 320, .height = 240, .seed = 30});
    write_file(inbox() / "early.jpg", source);
    write_file(inbox() / "sub" / "early2.jpg",
               make_jpeg({.width = 320, .height = 240, .seed = 31}));
    write_config({.rescan_s = 3600});  // only the start-up scan can find them in time
    start_daemon();
    EXPECT_TRUE(wait_complete("early.jpg"));
    EXPECT_TRUE(wait_complete("sub/early2.jpg"));
    EXPECT_EQ(read_file(done() / "early.jpg"), source);
}

TEST_F(IntakeTest, FileWithoutCloseOrMoveEventIsFoundByTheRescan) {
    // A hard link makes a complete file appear in inbox/ with IN_CREATE only: no IN_CLOSE_WRITE
    // and no IN_MOVED_TO, like a file written over NFS. The rescan (rescan_s = 1) must find it.
    start_daemon();
    wait_until_watching();
    if (HasFatalFailure()) return;
    const std::string source = make_jpeg({.width = 320, .height = 240, .seed = 32});
    write_file(outside() / "linked.jpg", source);
    ASSERT_EQ(::link((outside() / "linked.jpg").c_str(), (inbox() / "linked.jpg").c_str()), 0);
    EXPECT_TRUE(wait_complete("linked.jpg"));
    EXPECT_EQ(read_file(outside() / "linked.jpg"), source);
}

}  // namespace
}  // namespace imgspool::it
