#include "store/s3/xml_text.hpp"

#include <array>
#include <utility>

namespace imgspool::s3 {

namespace {

constexpr std::array<std::pair<std::string_view, char>, 5> kEntities{{
    {"&amp;", '&'},
    {"&lt;", '<'},
    {"&gt;", '>'},
    {"&quot;", '"'},
    {"&apos;", '\''},
}};

std::string decode_entities(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        bool decoded = false;
        if (text[i] == '&') {
            for (const auto& [entity, c] : kEntities) {
                if (text.substr(i, entity.size()) == entity) {
                    out += c;
                    i += entity.size();
                    decoded = true;
                    break;
                }
            }
        }
        if (!decoded) out += text[i++];
    }
    return out;
}

}  // namespace

std::optional<std::string> xml_tag_text(std::string_view xml, std::string_view tag) {
    // Built by append: GCC 12 at -O3 misreads "<" + tag + ">" as overlapping (-Wrestrict).
    std::string open = "<";
    open.append(tag).append(">");
    std::string close = "</";
    close.append(tag).append(">");
    const auto start = xml.find(open);
    if (start == std::string_view::npos) return std::nullopt;
    const auto text_start = start + open.size();
    const auto end = xml.find(close, text_start);
    if (end == std::string_view::npos) return std::nullopt;
    return decode_entities(xml.substr(text_start, end - text_start));
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        bool escaped = false;
        for (const auto& [entity, plain] : kEntities) {
            if (c == plain) {
                out += entity;
                escaped = true;
                break;
            }
        }
        if (!escaped) out += c;
    }
    return out;
}

}  // namespace imgspool::s3
