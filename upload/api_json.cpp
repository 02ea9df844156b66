#include "upload/api_json.hpp"

#include <nlohmann/json.hpp>

#include "common/printable_json.hpp"

namespace imgspool::upload {
namespace {

using nlohmann::json;

// "small.webp", as the key of images.urls; JPEG files end in .jpg.
std::string url_key(const VariantView& v) {
    return v.variant + "." + (v.format == "jpeg" ? std::string("jpg") : v.format);
}

json text_or_null(const std::string& text) {
    return text.empty() ? json(nullptr) : json(text);
}

// Only those the job has: an empty object when its profile asks for none.
json placeholders_of(const ImageView& view) {
    json placeholders = json::object();
    if (!view.blurhash.empty()) placeholders["blurhash"] = view.blurhash;
    if (!view.lqip.empty()) placeholders["lqip"] = view.lqip;
    return placeholders;
}

}  // namespace

std::string status_url(std::string_view upload_id) {
    return "/images/" + std::string(upload_id);
}

std::string error_json(std::string_view reason) {
    return dump_printable(json{{"error", std::string(reason)}});
}

std::string accepted_image_json(std::string_view upload_id, const PreparedUpload& up) {
    return dump_printable(json{{"uploadId", std::string(upload_id)},
                               {"originalSize", up.bytes},
                               {"dimensions", {{"width", up.width}, {"height", up.height}}},
                               {"format", up.format},
                               {"statusUrl", status_url(upload_id)}});
}

std::string accepted_job_json(std::string_view upload_id) {
    return dump_printable(
        json{{"uploadId", std::string(upload_id)}, {"statusUrl", status_url(upload_id)}});
}

std::string image_json(const ImageView& view) {
    json metadata = nullptr;
    if (!view.metadata_json.empty()) {
        metadata = json::parse(view.metadata_json, nullptr, /*allow_exceptions=*/false);
        if (metadata.is_discarded()) metadata = view.metadata_json;
    }
    json urls = json::object();
    json variants = json::array();
    for (const VariantView& v : view.variants) {
        urls[url_key(v)] = v.url;
        variants.push_back({{"variant", v.variant},
                            {"format", v.format},
                            {"width", v.width},
                            {"height", v.height},
                            {"bytes", v.bytes},
                            {"url", v.url}});
    }
    return dump_printable(json{{"uploadId", view.upload_id},
                               {"status", view.status},
                               {"progress", view.progress},
                               {"error", text_or_null(view.error)},
                               {"source", view.source},
                               {"metadata", std::move(metadata)},
                               {"userId", text_or_null(view.user_id)},
                               {"tool", text_or_null(view.tool)},
                               {"ref", text_or_null(view.ref)},
                               {"urls", std::move(urls)},
                               {"variants", std::move(variants)},
                               {"placeholders", placeholders_of(view)}});
}

}  // namespace imgspool::upload
