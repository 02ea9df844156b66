// The multipart protocol itself runs against s3rver in s3_store_it_test.cpp; this checks the
// completion document.
#include "store/s3/multipart_upload.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

TEST(MultipartUpload, CompleteBodyListsPartsInOrderWithQuotedEtags) {
    EXPECT_EQ(complete_multipart_body({"\"a1\"", "\"b2\""}),
              "<CompleteMultipartUpload>"
              "<Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part>"
              "<Part><PartNumber>2</PartNumber><ETag>&quot;b2&quot;</ETag></Part>"
              "</CompleteMultipartUpload>");
}

}  // namespace
}  // namespace imgspool::s3
