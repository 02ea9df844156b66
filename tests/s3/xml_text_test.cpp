#include "store/s3/xml_text.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

TEST(XmlText, FirstTagTextDecoded) {
    const std::string xml =
        "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket>"
        "<Key>a&amp;b</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
    EXPECT_EQ(xml_tag_text(xml, "UploadId"), "VXBsb2FkIElE");
    EXPECT_EQ(xml_tag_text(xml, "Key"), "a&b");
    EXPECT_EQ(xml_tag_text(xml, "Missing"), std::nullopt);
    EXPECT_EQ(xml_tag_text("<Code>unterminated", "Code"), std::nullopt);
    EXPECT_EQ(xml_tag_text("<Code></Code>", "Code"), "");
}

TEST(XmlText, EscapeRoundTrips) {
    const std::string text = "\"etag\" <&> 'x'";
    EXPECT_EQ(xml_escape(text), "&quot;etag&quot; &lt;&amp;&gt; &apos;x&apos;");
    EXPECT_EQ(xml_tag_text("<E>" + xml_escape(text) + "</E>", "E"), text);
}

}  // namespace
}  // namespace imgspool::s3
