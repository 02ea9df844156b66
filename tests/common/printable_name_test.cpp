#include "common/printable_name.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/printable_json.hpp"

using namespace imgspool;

TEST(PrintableName, KeepsValidUtf8AsItIs) {
    EXPECT_EQ(printable_name("plain.jpg"), "plain.jpg");
    EXPECT_EQ(printable_name("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb7.jpg"),
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb7.jpg");
    // Control characters are valid UTF-8: each format escapes them its own way.
    EXPECT_EQ(printable_name(std::string("a\nb\x01\x1b\x7f", 6)), std::string("a\nb\x01\x1b\x7f"));
    EXPECT_EQ(printable_name(std::string("nul\0byte", 8)), std::string("nul\0byte", 8));
    EXPECT_EQ(printable_name(""), "");
}

TEST(PrintableName, WritesEveryByteOutsideValidUtf8AsHex) {
    EXPECT_EQ(printable_name("\xff\xfe.jpg"), "\\xff\\xfe.jpg");
    EXPECT_EQ(printable_name("caf\xe9.jpg"), "caf\\xe9.jpg");  // latin-1
    // A sequence cut short: each of its bytes is shown, then the text goes on.
    EXPECT_EQ(printable_name("a\xe2\x82z"), "a\\xe2\\x82z");
    EXPECT_EQ(printable_name("\xe2\x82"), "\\xe2\\x82");
    // Overlong forms, surrogates and code points above U+10FFFF are not valid UTF-8.
    EXPECT_EQ(printable_name("\xc0\xaf"), "\\xc0\\xaf");
    EXPECT_EQ(printable_name("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
    EXPECT_EQ(printable_name("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    EXPECT_EQ(printable_name("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
    EXPECT_EQ(printable_name("\xf5"), "\\xf5");
    EXPECT_EQ(printable_name("\x80"), "\\x80");
}

TEST(PrintableName, ResultIsAlwaysValidUtf8ThatJsonAccepts) {
    // Every single byte value, and every pair, as a name: the output is valid UTF-8, and a
    // strict JSON writer (which throws on invalid UTF-8) takes it.
    for (int a = 0; a < 256; ++a) {
        for (int b = 0; b < 256; ++b) {
            const std::string name{static_cast<char>(a), static_cast<char>(b), '\xe2', '\x82'};
            const std::string text = printable_name(name);
            ASSERT_TRUE(is_valid_utf8(text)) << a << "," << b;
            ASSERT_NO_THROW((void)nlohmann::json(text).dump()) << a << "," << b;
        }
    }
}

TEST(PrintableName, Utf8ValidityMatchesJsonsOwnCheck) {
    // nlohmann::json throws type_error 316 exactly for the strings is_valid_utf8 rejects.
    for (const std::string& s :
         {std::string("ok"), std::string("\xc3\xa9"), std::string("\xc3"),
          std::string("\xed\x9f\xbf"), std::string("\xed\xa0\x80"), std::string("\xf0\x90\x80\x80"),
          std::string("\xf0\x80\x80\x80"), std::string("\xf4\x8f\xbf\xbf"),
          std::string("\xf4\x90\x80\x80"), std::string("\xc1\xbf"), std::string("\xc2\x80")}) {
        bool json_ok = true;
        try {
            (void)nlohmann::json(s).dump();
        } catch (const nlohmann::json::type_error&) {
            json_ok = false;
        }
        EXPECT_EQ(is_valid_utf8(s), json_ok) << hex_bytes(s);
    }
}

TEST(PrintableName, HexBytesGivesTheExactBytes) {
    EXPECT_EQ(hex_bytes("\xff\xfe.jpg"), "fffe2e6a7067");
    EXPECT_EQ(hex_bytes(std::string("\0\x01", 2)), "0001");
    EXPECT_EQ(hex_bytes(""), "");
}

TEST(PrintableName, PrefixLengthNeverSplitsAUtf8Sequence) {
    const std::string euros = "\xe2\x82\xac\xe2\x82\xac";  // two 3-byte characters
    EXPECT_EQ(utf8_prefix_length(euros, 6), 6u);
    EXPECT_EQ(utf8_prefix_length(euros, 5), 3u);
    EXPECT_EQ(utf8_prefix_length(euros, 3), 3u);
    EXPECT_EQ(utf8_prefix_length(euros, 2), 0u);
    EXPECT_EQ(utf8_prefix_length("abc", 10), 3u);
    // Bytes outside valid UTF-8 count one each.
    EXPECT_EQ(utf8_prefix_length("\xff\xfe\xfd", 2), 2u);
}

TEST(PrintableJson, EscapesEveryStringAndKeyAndNeverThrows) {
    nlohmann::json value = {{"source", "\xff.jpg"},
                            {"list", {"ok", "caf\xe9"}},
                            {"n", 3},
                            {"nested", {{"k\xfe", "v"}}}};
    std::string text;
    ASSERT_NO_THROW(text = dump_printable(value));
    const nlohmann::json back = nlohmann::json::parse(text);
    EXPECT_EQ(back["source"], "\\xff.jpg");
    EXPECT_EQ(back["list"][1], "caf\\xe9");
    EXPECT_EQ(back["n"], 3);
    EXPECT_EQ(back["nested"]["k\\xfe"], "v");
}
