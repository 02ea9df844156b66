#include "common/log.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

using namespace imgspool;

TEST(Log, WritesOneJsonObjectPerLine) {
    log::set_level(log::Level::info);
    ::testing::internal::CaptureStderr();
    log::info("job finished", {{"upload_id", "abc"}, {"bytes", 12}, {"ok", true}, {"ratio", 0.5}});
    log::debug("hidden at info");
    log::warn("quote \" and\nnewline");
    std::string out = ::testing::internal::GetCapturedStderr();

    std::vector<nlohmann::json> lines;
    size_t start = 0;
    for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(nlohmann::json::parse(out.substr(start, nl - start)));
    }
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["msg"], "job finished");
    EXPECT_EQ(lines[0]["level"], "info");
    EXPECT_EQ(lines[0]["upload_id"], "abc");
    EXPECT_EQ(lines[0]["bytes"], 12);
    EXPECT_EQ(lines[0]["ok"], true);
    EXPECT_DOUBLE_EQ(lines[0]["ratio"].get<double>(), 0.5);
    EXPECT_TRUE(lines[0]["ts"].get<std::string>().ends_with("Z"));
    EXPECT_EQ(lines[1]["msg"], "quote \" and\nnewline");
}

TEST(Log, LevelFromEnvironment) {
    ::setenv("LOG_LEVEL", "error", 1);
    EXPECT_TRUE(log::configure_from_env());
    EXPECT_FALSE(log::enabled(log::Level::warn));
    EXPECT_TRUE(log::enabled(log::Level::error));
    ::setenv("LOG_LEVEL", "loud", 1);
    EXPECT_FALSE(log::configure_from_env());
    ::unsetenv("LOG_LEVEL");
    log::set_level(log::Level::info);
}

TEST(Log, FieldsTakeAnyBytesLosslessly) {
    log::set_level(log::Level::info);
    ::testing::internal::CaptureStderr();
    log::info("job failed", {{"source", "\xff\xfe.jpg"},
                             {"other", "\xfe\xff.jpg"},
                             {"ctl", std::string("a\nb\x01\x1b", 5)},
                             {"ok", "caf\xc3\xa9.jpg"}});
    const std::string out = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;  // the newline is escaped
    const nlohmann::json line = nlohmann::json::parse(out);
    // Two different invalid names stay different (no U+FFFD replacement).
    EXPECT_EQ(line["source"], "\\xff\\xfe.jpg");
    EXPECT_EQ(line["other"], "\\xfe\\xff.jpg");
    EXPECT_EQ(line["ctl"], std::string("a\nb\x01\x1b"));
    EXPECT_EQ(line["ok"], "caf\xc3\xa9.jpg");
}
