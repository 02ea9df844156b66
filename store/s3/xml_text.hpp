// Just enough XML for S3's small answers: the text of the first <Tag>...</Tag>, entities decoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace imgspool::s3 {

// The decoded text inside the first <tag>...</tag> of xml, or nullopt when there is none.
std::optional<std::string> xml_tag_text(std::string_view xml, std::string_view tag);

// Escapes & < > " ' for use inside an element.
std::string xml_escape(std::string_view text);

}  // namespace imgspool::s3
