#include "tests/integration/web_outputs.hpp"

#include <map>
#include <sstream>

#include "tests/integration/images.hpp"

namespace imgspool::it {
namespace {

std::string extension_of(const std::string& format) {
    return format == "jpeg" ? "jpg" : format;
}

std::string join(const std::set<std::string>& s) {
    std::string out;
    for (const std::string& x : s) out += (out.empty() ? "" : ", ") + x;
    return "{" + out + "}";
}

}  // namespace

std::set<std::string> web_output_names(const std::string& source_format) {
    const std::string ext = extension_of(source_format);
    return {"small." + ext, "small.webp", "medium." + ext,  "medium.webp",
            "large." + ext, "large.webp", "original." + ext};
}

::testing::AssertionResult web_outputs_ok(const std::filesystem::path& objects,
                                          const std::string& upload_id,
                                          const std::string& source_format, int src_w, int src_h) {
    const std::filesystem::path dir = objects / "images" / upload_id;
    std::set<std::string> found;
    for (const std::string& f : SpoolFixture::files_under(dir)) found.insert(f);
    const std::set<std::string> wanted = web_output_names(source_format);
    if (found != wanted) {
        return ::testing::AssertionFailure()
               << "objects under " << dir << ": " << join(found) << ", expected " << join(wanted);
    }
    for (const std::string& name : wanted) {
        if (auto ok = web_output_ok(name, read_file(dir / name), src_w, src_h); !ok) return ok;
    }
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult web_output_ok(const std::string& name, const std::string& bytes,
                                         int src_w, int src_h) {
    const std::map<std::string, std::pair<int, int>> sizes = {{"small", {150, 150}},
                                                              {"medium", {400, 400}},
                                                              {"large", {800, 800}},
                                                              {"original", {src_w, src_h}}};
    const std::string variant = name.substr(0, name.find('.'));
    const std::string ext = name.substr(name.find('.') + 1);
    const std::string expect_format = ext == "jpg" ? "jpeg" : ext;
    if (magic_format(bytes) != expect_format) {
        return ::testing::AssertionFailure()
               << name << " has the magic bytes of " << magic_format(bytes) << ", expected "
               << expect_format;
    }
    const ReadBack rb = read_image_buffer(bytes);
    if (!rb.ok) return ::testing::AssertionFailure() << name << " does not decode: " << rb.error;
    const auto [w, h] = sizes.at(variant);
    if (rb.width != w || rb.height != h) {
        return ::testing::AssertionFailure()
               << name << " is " << rb.width << "x" << rb.height << ", expected " << w << "x" << h;
    }
    if (rb.has_exif || rb.has_xmp) {
        return ::testing::AssertionFailure() << name << " still carries metadata (exif "
                                             << rb.has_exif << ", xmp " << rb.has_xmp << ")";
    }
    return ::testing::AssertionSuccess();
}

std::set<std::string> recorded_urls(SpoolFixture& f, const std::string& upload_id) {
    std::set<std::string> urls;
    auto rows = f.query("SELECT urls FROM images WHERE upload_id = ?1", {upload_id});
    if (rows.empty()) return urls;
    const nlohmann::json j = nlohmann::json::parse(rows.front()["urls"]);
    for (const auto& [key, value] : j.items()) urls.insert(value.get<std::string>());
    return urls;
}

std::set<std::string> expected_urls(const std::string& upload_id,
                                    const std::string& source_format) {
    return expected_urls(upload_id, source_format, kCdn);
}

std::set<std::string> expected_urls(const std::string& upload_id, const std::string& source_format,
                                    const std::string& base) {
    std::set<std::string> urls;
    for (const std::string& name : web_output_names(source_format)) {
        urls.insert(base + "/images/" + upload_id + "/" + name);
    }
    return urls;
}

}  // namespace imgspool::it
