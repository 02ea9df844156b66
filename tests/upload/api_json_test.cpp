#include "upload/api_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace imgspool::upload {
namespace {

using nlohmann::json;

TEST(ApiJson, ShowsAPendingJobWithNullsAndNoVariants) {
    ImageView view;
    view.upload_id = "0b1c";
    view.status = "pending";
    view.source = "http/photo.jpg";
    const json body = json::parse(image_json(view));
    EXPECT_EQ(body, (json{{"uploadId", "0b1c"},
                          {"status", "pending"},
                          {"progress", 0},
                          {"error", nullptr},
                          {"source", "http/photo.jpg"},
                          {"metadata", nullptr},
                          {"userId", nullptr},
                          {"tool", nullptr},
                          {"ref", nullptr},
                          {"urls", json::object()},
                          {"variants", json::array()},
                          {"placeholders", json::object()}}));
}

TEST(ApiJson, ShowsAFailedJobsErrorAndItsRequest) {
    ImageView view;
    view.upload_id = "id";
    view.status = "failed";
    view.error = "fetch: refused: 10.0.0.5 is a private address";
    view.source = "https://example.test/a.jpg";
    view.metadata_json = R"({"prompt":"fox","n":[1,2]})";
    view.user_id = "u-1";
    view.tool = "dall-e";
    view.ref = "client-7";
    const json body = json::parse(image_json(view));
    EXPECT_EQ(body.at("error"), "fetch: refused: 10.0.0.5 is a private address");
    EXPECT_EQ(body.at("metadata"), (json{{"prompt", "fox"}, {"n", {1, 2}}}));
    EXPECT_EQ(body.at("tool"), "dall-e");
    EXPECT_EQ(body.at("ref"), "client-7");
}

TEST(ApiJson, KeysUrlsByVariantAndFileExtension) {
    ImageView view;
    view.variants = {{"thumb", "jpeg", 100, 80, 2000, "https://cdn/t.jpg"},
                     {"small", "webp", 320, 240, 9000, "https://cdn/s.webp"},
                     {"icon", "png", 32, 32, 500, "https://cdn/i.png"}};
    const json body = json::parse(image_json(view));
    EXPECT_EQ(body.at("urls"), (json{{"thumb.jpg", "https://cdn/t.jpg"},
                                     {"small.webp", "https://cdn/s.webp"},
                                     {"icon.png", "https://cdn/i.png"}}));
    ASSERT_EQ(body.at("variants").size(), 3u);
    EXPECT_EQ(body.at("variants")[0].at("format"), "jpeg");
    EXPECT_EQ(body.at("variants")[0].at("bytes"), 2000);
}

TEST(ApiJson, ShowsThePlaceholdersTheJobHas) {
    ImageView view;
    view.status = "complete";
    EXPECT_EQ(json::parse(image_json(view)).at("placeholders"), json::object());
    view.blurhash = "LEHV6nWB2yk8pyo0adR*.7kCMdnj";
    EXPECT_EQ(json::parse(image_json(view)).at("placeholders"),
              (json{{"blurhash", "LEHV6nWB2yk8pyo0adR*.7kCMdnj"}}));
    view.lqip = "data:image/webp;base64,UklGRg==";
    EXPECT_EQ(json::parse(image_json(view)).at("placeholders"),
              (json{{"blurhash", "LEHV6nWB2yk8pyo0adR*.7kCMdnj"},
                    {"lqip", "data:image/webp;base64,UklGRg=="}}));
}

TEST(ApiJson, StaysValidJsonWhateverTheBytes) {
    ImageView view;
    view.source = "caf\xE9\xFF.jpg";                  // a file name that is not UTF-8
    view.metadata_json = "{not json";                 // a damaged row: shown as text, not dropped
    const json body = json::parse(image_json(view));  // throws if the text is not valid JSON
    EXPECT_EQ(body.at("metadata"), "{not json");
    EXPECT_TRUE(body.at("source").is_string());
    EXPECT_EQ(json::parse(error_json("bad \xC3 byte")).at("error").is_string(), true);
}

TEST(ApiJson, AcceptedBodiesCarryTheStatusUrl) {
    PreparedUpload up;
    up.bytes = 12345;
    up.format = "png";
    up.width = 640;
    up.height = 480;
    EXPECT_EQ(json::parse(accepted_image_json("abc", up)),
              (json{{"uploadId", "abc"},
                    {"originalSize", 12345},
                    {"dimensions", {{"width", 640}, {"height", 480}}},
                    {"format", "png"},
                    {"statusUrl", "/images/abc"}}));
    EXPECT_EQ(json::parse(accepted_job_json("abc")),
              (json{{"uploadId", "abc"}, {"statusUrl", "/images/abc"}}));
    EXPECT_EQ(json::parse(error_json("no \"image\" field")),
              (json{{"error", "no \"image\" field"}}));
}

}  // namespace
}  // namespace imgspool::upload
