#include "store/object_store.hpp"

#include <gtest/gtest.h>

namespace imgspool {
namespace {

TEST(ExpandKey, ReplacesEveryPlaceholder) {
    EXPECT_EQ(expand_key("{spool}/{profile}/{upload_id}/{variant}.{ext}", "u1", "small", "jpg",
                         "photos", "web"),
              "photos/web/u1/small.jpg");
}

TEST(ExpandKey, DefaultTemplateAndRepeatedPlaceholders) {
    EXPECT_EQ(expand_key("images/{upload_id}/{variant}.{ext}", "abc", "thumb", "webp"),
              "images/abc/thumb.webp");
    EXPECT_EQ(expand_key("{upload_id}/{upload_id}-{variant}.{ext}", "x", "v", "png"), "x/x-v.png");
}

TEST(ExpandKey, LeavesUnknownAndUnclosedBracesAlone) {
    EXPECT_EQ(expand_key("{nope}/{upload_id}.{ext", "u", "v", "e"), "{nope}/u.{ext");
    EXPECT_EQ(expand_key("plain", "u", "v", "e"), "plain");
}

Error invalid(std::string_view key_template) {
    auto st = validate_key_template(key_template);
    EXPECT_FALSE(st.ok()) << key_template;
    return st.ok() ? Error{} : st.error();
}

TEST(ValidateKeyTemplate, AcceptsTemplatesWithTheRequiredPlaceholders) {
    EXPECT_TRUE(validate_key_template("images/{upload_id}/{variant}.{ext}").ok());
    EXPECT_TRUE(validate_key_template("{spool}/{profile}/{upload_id}-{variant}.{ext}").ok());
    EXPECT_TRUE(validate_key_template("a..b/{upload_id}/{variant}.{ext}").ok());
}

TEST(ValidateKeyTemplate, NamesAnUnknownPlaceholder) {
    auto e = invalid("images/{upload}/{upload_id}/{variant}.{ext}");
    EXPECT_EQ(e.stage, Stage::config);
    EXPECT_NE(e.reason.find("unknown placeholder {upload}"), std::string::npos) << e.reason;
}

TEST(ValidateKeyTemplate, RefusesUnbalancedBraces) {
    auto open = invalid("images/{upload_id/{variant}.{ext}");
    EXPECT_NE(open.reason.find("unbalanced \"{\" at position 8"), std::string::npos) << open.reason;
    auto close = invalid("images/upload_id}/{upload_id}/{variant}.{ext}");
    EXPECT_NE(close.reason.find("unbalanced \"}\""), std::string::npos) << close.reason;
    EXPECT_NE(invalid("{upload_id}/{variant}.{ext").reason.find("unbalanced"), std::string::npos);
}

TEST(ValidateKeyTemplate, RequiresUploadIdVariantAndExt) {
    EXPECT_NE(invalid("images/{variant}.{ext}").reason.find("{upload_id}"), std::string::npos);
    EXPECT_NE(invalid("images/{upload_id}.{ext}").reason.find("{variant}"), std::string::npos);
    EXPECT_NE(invalid("images/{upload_id}/{variant}").reason.find("{ext}"), std::string::npos);
    EXPECT_EQ(invalid("").stage, Stage::config);
}

TEST(ValidateKeyTemplate, RefusesAbsoluteAndParentSegments) {
    EXPECT_NE(invalid("/images/{upload_id}/{variant}.{ext}").reason.find("start with \"/\""),
              std::string::npos);
    EXPECT_NE(invalid("../{upload_id}/{variant}.{ext}").reason.find("\"..\""), std::string::npos);
    EXPECT_NE(invalid("images/../{upload_id}/{variant}.{ext}").reason.find("\"..\""),
              std::string::npos);
    EXPECT_NE(invalid("{upload_id}/{variant}.{ext}/..").reason.find("\"..\""), std::string::npos);
}

}  // namespace
}  // namespace imgspool
