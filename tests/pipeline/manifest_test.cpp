#include "pipeline/manifest.hpp"

#include <gtest/gtest.h>

#include <string>

namespace imgspool {
namespace {

// The reason of a manifest that must be refused; a test failure when it is accepted.
std::string refusal(std::string_view bytes) {
    auto parsed = parse_manifest(bytes);
    if (parsed) {
        ADD_FAILURE() << "accepted: " << bytes;
        return {};
    }
    EXPECT_EQ(parsed.error().stage, Stage::validate);
    EXPECT_FALSE(parsed.error().transient);
    EXPECT_TRUE(parsed.error().reason.starts_with("manifest: ")) << parsed.error().reason;
    return parsed.error().reason;
}

TEST(ManifestName, EndsInJobJsonInAnyCase) {
    EXPECT_TRUE(is_manifest_name("cat.job.json"));
    EXPECT_TRUE(is_manifest_name("sub/dir/cat.JOB.Json"));
    EXPECT_TRUE(is_manifest_name(std::string("\xff\xfe.job.json")));  // names are bytes
    EXPECT_FALSE(is_manifest_name("cat.json"));
    EXPECT_FALSE(is_manifest_name("cat.job.json.jpg"));
    EXPECT_FALSE(is_manifest_name("cat.jobxjson"));
    EXPECT_FALSE(is_manifest_name(".job.json"));  // nothing before the suffix
    EXPECT_FALSE(is_manifest_name("a.job.json/photo.jpg"));
    EXPECT_FALSE(is_manifest_name(""));
}

TEST(ParseManifest, AllKeys) {
    auto m = parse_manifest(R"({
        "source": "https://images.example.com/cat.png",
        "profile": "dall-e", "user_id": "user-42", "tool": "dall-e",
        "metadata": {"prompt": "a cat in a hat", "seed": 7, "tags": ["a", "b"]},
        "ref": "client-7"})");
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(
        *m, (JobManifest{"https://images.example.com/cat.png", "dall-e", "user-42", "dall-e",
                         "client-7", R"({"prompt":"a cat in a hat","seed":7,"tags":["a","b"]})"}));
}

TEST(ParseManifest, OnlySourceIsRequiredAndNullIsLeftOut) {
    for (const char* text : {R"({"source": "s3://bucket/dir/key.jpg"})",
                             R"({"source": "s3://bucket/dir/key.jpg", "profile": null,
                                 "user_id": null, "tool": null, "ref": null, "metadata": null})"}) {
        auto m = parse_manifest(text);
        ASSERT_TRUE(m.ok()) << m.error().message();
        EXPECT_EQ(*m, (JobManifest{"s3://bucket/dir/key.jpg", "", "", "", "", ""})) << text;
    }
    auto plain = parse_manifest(R"({"source": "http://127.0.0.1:8080/a.jpg", "metadata": {}})");
    ASSERT_TRUE(plain.ok()) << plain.error().message();
    EXPECT_EQ(plain->metadata_json, "{}");
}

TEST(ParseManifest, SourceIsRequiredAndAnHttpOrS3Url) {
    EXPECT_EQ(refusal(R"({"user_id": "u"})"), R"(manifest: "source" is required)");
    EXPECT_EQ(refusal(R"({"source": ""})"), R"(manifest: "source" is required)");
    EXPECT_EQ(refusal(R"({"source": null})"), R"(manifest: "source" is required)");
    for (const char* bad :
         {R"({"source": "ftp://example.com/a.jpg"})", R"({"source": "file:///etc/passwd"})",
          R"({"source": "/var/spool/a.jpg"})", R"({"source": " https://example.com/a.jpg"})",
          R"({"source": "https:/example.com/a.jpg"})"}) {
        EXPECT_EQ(refusal(bad), "manifest: \"source\" must start with http://, https:// or s3://")
            << bad;
    }
    EXPECT_EQ(refusal(R"({"source": ["https://example.com/a.jpg"]})"),
              R"(manifest: "source" must be a string, not array)");
}

TEST(ParseManifest, UnknownKeysAreRefusedByName) {
    EXPECT_EQ(refusal(R"({"sorce": "https://example.com/a.jpg"})"),
              R"(manifest: unknown key "sorce")");
    EXPECT_EQ(refusal(R"({"source": "https://example.com/a.jpg", "userId": "u"})"),
              R"(manifest: unknown key "userId")");
    // The name is quoted as JSON, so a control character cannot break the log line...
    EXPECT_EQ(refusal("{\"source\": \"https://e.com/a\", \"a\\nb\": 1}"),
              R"(manifest: unknown key "a\nb")");
    // ...and a long one is cut short.
    const std::string long_key(5000, 'k');
    EXPECT_EQ(refusal(R"({"source": "https://e.com/a", ")" + long_key + R"(": 1})"),
              "manifest: unknown key \"" + std::string(64, 'k') + "\"...");
}

TEST(ParseManifest, AKeyGivenTwiceIsRefused) {
    EXPECT_EQ(refusal(R"({"source": "https://good.example/a.jpg", "source": "http://10.0.0.5/"})"),
              R"(manifest: key "source" is given twice)");
    // Inside metadata the usual JSON rule stands.
    EXPECT_TRUE(
        parse_manifest(R"({"source": "s3://b/k", "metadata": {"a": 1, "b": {"a": 2}}})").ok());
}

TEST(ParseManifest, FieldsMustBeStringsOfAtMostOneKiB) {
    for (const char* key : {"profile", "user_id", "tool", "ref"}) {
        const std::string k = key;
        EXPECT_EQ(refusal(R"({"source": "s3://b/k", ")" + k + R"(": 42})"),
                  "manifest: \"" + k + "\" must be a string, not number");
        EXPECT_EQ(refusal(R"({"source": "s3://b/k", ")" + k + R"(": {"a": 1}})"),
                  "manifest: \"" + k + "\" must be a string, not object");
        const std::string at_limit(1024, 'x');
        auto ok = parse_manifest(R"({"source": "s3://b/k", ")" + k + R"(": ")" + at_limit + "\"}");
        EXPECT_TRUE(ok.ok()) << k;
        EXPECT_EQ(refusal(R"({"source": "s3://b/k", ")" + k + R"(": ")" + at_limit + "x\"}"),
                  "manifest: \"" + k + "\" is longer than 1024 bytes (1025)");
    }
    const std::string long_url = "https://example.com/" + std::string(1100, 'a');
    EXPECT_EQ(refusal(R"({"source": ")" + long_url + "\"}"),
              "manifest: \"source\" is longer than 1024 bytes (1120)");
}

TEST(ParseManifest, MetadataIsAnObjectOfAtMostSixteenKiB) {
    for (const auto& [value, type] :
         {std::pair{"\"a prompt\"", "string"}, std::pair{"[1]", "array"}, std::pair{"3", "number"},
          std::pair{"true", "boolean"}}) {
        EXPECT_EQ(refusal(R"({"source": "s3://b/k", "metadata": )" + std::string(value) + "}"),
                  "manifest: \"metadata\" must be a JSON object, not " + std::string(type));
    }
    // {"p":"xxx..."} serialised is 8 bytes plus the string.
    const std::string fits(16 * 1024 - 8, 'x');
    auto m = parse_manifest(R"({"source": "s3://b/k", "metadata": {"p": ")" + fits + "\"}}");
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->metadata_json.size(), 16u * 1024);
    EXPECT_EQ(refusal(R"({"source": "s3://b/k", "metadata": {"p": ")" + fits + "x\"}}"),
              "manifest: \"metadata\" is larger than 16 KiB (16385 bytes)");
    // The limit is on the compact form: whitespace in the file does not count.
    const std::string spaced = R"({"source": "s3://b/k", "metadata": {"p"   :    ")" + fits + "\"" +
                               std::string(100, ' ') + "}}";
    EXPECT_TRUE(parse_manifest(spaced).ok());
}

TEST(ParseManifest, NotJsonSaysWhereTheParserStopped) {
    const std::string reason = refusal(R"({"source": "s3://b/k",})");
    EXPECT_TRUE(reason.starts_with("manifest: not JSON: parse error at line 1, column 23"))
        << reason;
    EXPECT_EQ(reason.find("last read"), std::string::npos) << reason;
    const std::string second_line = refusal("{\"source\": \"s3://b/k\",\n  \"tool\": x}");
    EXPECT_NE(second_line.find("line 2, column 11"), std::string::npos) << second_line;
    EXPECT_TRUE(refusal("").starts_with("manifest: not JSON: parse error at line 1, column 1"));
    // Bytes that are not UTF-8 are not JSON, and are not repeated in the reason.
    const std::string bad_utf8 = refusal("{\"source\": \"s3://b/\xff\xfe\"}");
    EXPECT_TRUE(bad_utf8.starts_with("manifest: not JSON: ")) << bad_utf8;
    EXPECT_EQ(bad_utf8.find('\xff'), std::string::npos);
}

TEST(ParseManifest, TheWholeMustBeAnObject) {
    EXPECT_EQ(refusal(R"(["https://example.com/a.jpg"])"),
              "manifest: must be a JSON object, not array");
    EXPECT_EQ(refusal(R"("https://example.com/a.jpg")"),
              "manifest: must be a JSON object, not string");
    EXPECT_EQ(refusal("null"), "manifest: must be a JSON object, not null");
}

TEST(ParseManifest, AtMostSixtyFourKiBAndThirtyTwoLevels) {
    std::string padded = R"({"source": "s3://b/k"})";
    padded += std::string(kMaxManifestBytes - padded.size(), ' ');
    EXPECT_TRUE(parse_manifest(padded).ok());
    EXPECT_EQ(refusal(padded + " "), "manifest: larger than 64 KiB (65537 bytes)");

    // The manifest object and 31 levels inside it fit (metadata, then arrays), one more does
    // not.
    auto nested = [](int levels) {
        return R"({"source": "s3://b/k", "metadata": {"a": )" + std::string(levels - 1, '[') +
               std::string(levels - 1, ']') + "}}";
    };
    EXPECT_TRUE(parse_manifest(nested(2)).ok());
    auto deepest = parse_manifest(nested(31));
    ASSERT_TRUE(deepest.ok()) << deepest.error().message();
    EXPECT_EQ(deepest->metadata_json,
              R"({"a":)" + std::string(30, '[') + std::string(30, ']') + "}");
    EXPECT_EQ(refusal(nested(32)), "manifest: nested deeper than 32 levels");
    // Thousands of brackets (inside the size limit) are refused the same way.
    EXPECT_EQ(refusal(nested(30000)), "manifest: nested deeper than 32 levels");
}

}  // namespace
}  // namespace imgspool
