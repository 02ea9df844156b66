#include "upload/form_upload.hpp"

#include <algorithm>
#include <utility>

#include "pipeline/validate.hpp"

namespace imgspool::upload {
namespace {

constexpr std::size_t kSniffBytes = 12;  // enough for every magic number (WebP's is 12)

// Control characters would end up in logs, file names and the database.
bool has_control(std::string_view text) {
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7F) return true;
    }
    return false;
}

}  // namespace

FormUpload::FormUpload(std::filesystem::path temp_dir, std::string part_owner,
                       std::uint64_t max_bytes)
    : temp_dir_(std::move(temp_dir)), part_owner_(std::move(part_owner)), max_bytes_(max_bytes) {}

bool FormUpload::attach(MHD_Connection* connection) {
    // 64 KiB: the parser's own buffer, the most a connection holds of the body at once.
    parser_.reset(MHD_create_post_processor(connection, 64 * 1024, &FormUpload::on_field, this));
    if (!parser_) return reject(MHD_HTTP_BAD_REQUEST, "bad form: no multipart boundary");
    return true;
}

bool FormUpload::feed(const char* data, std::size_t size) {
    if (rejected_) return false;
    if (MHD_post_process(parser_.get(), data, size) != MHD_YES && !rejected_) {
        return reject(MHD_HTTP_BAD_REQUEST, "bad form: the multipart body cannot be parsed");
    }
    return !rejected_;
}

bool FormUpload::finish() {
    if (rejected_) return false;
    // The parser says here whether the body ended where the form does (closing boundary).
    const MHD_Result complete = MHD_destroy_post_processor(parser_.release());
    if (rejected_) return false;
    if (complete != MHD_YES) {
        return reject(MHD_HTTP_BAD_REQUEST, "bad form: the multipart body ends early");
    }
    if (!image_seen_) return reject(MHD_HTTP_BAD_REQUEST, "the form has no \"image\" field");
    if (Status closed = image_.close(); !closed) {
        return reject(closed.error().transient ? MHD_HTTP_SERVICE_UNAVAILABLE
                                               : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      closed.error().reason);
    }
    return true;
}

MHD_Result FormUpload::on_field(void* cls, MHD_ValueKind /*kind*/, const char* key,
                                const char* filename, const char* /*content_type*/,
                                const char* /*transfer_encoding*/, const char* data, uint64_t off,
                                size_t size) {
    auto& form = *static_cast<FormUpload*>(cls);
    if (form.rejected_) return MHD_NO;
    try {  // nothing may unwind through libmicrohttpd's C frames
        return form.field(key ? key : "", filename, data, off, size) ? MHD_YES : MHD_NO;
    } catch (const std::exception& e) {
        form.reject(MHD_HTTP_INTERNAL_SERVER_ERROR, e.what());
        return MHD_NO;
    }
}

bool FormUpload::field(const std::string& name, const char* filename, const char* data,
                       std::uint64_t off, std::size_t size) {
    if (name == "image") return image_chunk(filename, data, off, size);
    if (name == "spool") return text_chunk(name, fields_.spool, kFieldMax, data, off, size);
    if (name == "profile") return text_chunk(name, fields_.profile, kFieldMax, data, off, size);
    if (name == "user_id") return text_chunk(name, fields_.user_id, kFieldMax, data, off, size);
    if (name == "metadata") {
        return text_chunk(name, fields_.metadata, kMetadataMax, data, off, size);
    }
    return reject(MHD_HTTP_BAD_REQUEST, "unknown form field \"" + name +
                                            "\" (expected image, spool, profile, user_id, "
                                            "metadata)");
}

bool FormUpload::image_chunk(const char* filename, const char* data, std::uint64_t off,
                             std::size_t size) {
    if (off == 0) {
        if (image_seen_) return reject(MHD_HTTP_BAD_REQUEST, "the form has two \"image\" fields");
        image_seen_ = true;
        if (filename) {
            fields_.client_name = filename;
            if (fields_.client_name.size() > kFieldMax) {
                return reject(MHD_HTTP_BAD_REQUEST, "the image's file name is longer than " +
                                                        std::to_string(kFieldMax) + " bytes");
            }
        }
        Result<PartFile> part = PartFile::create(temp_dir_, part_owner_);
        if (!part) {
            return reject(part.error().transient ? MHD_HTTP_SERVICE_UNAVAILABLE
                                                 : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          part.error().reason);
        }
        image_ = std::move(*part);
    }
    if (image_.size() + size > max_bytes_) {
        return reject(MHD_HTTP_CONTENT_TOO_LARGE, "the image is larger than the limit of " +
                                                      std::to_string(max_bytes_) +
                                                      " bytes ([limits] max_bytes)");
    }
    if (!sniffed_) {
        head_.append(data, std::min(size, kSniffBytes - head_.size()));
        if (head_.size() >= kSniffBytes) {
            sniffed_ = true;
            // Not one of the three formats: turned away now, not after the whole body.
            if (!sniff_format(head_)) {
                Result<SourceInfo> judged = validate_source(head_, Limits{});
                return reject(MHD_HTTP_BAD_REQUEST,
                              judged ? std::string("not a ") + kSourceFormatNames + " image"
                                     : judged.error().reason);
            }
        }
    }
    if (Status written = image_.write(std::string_view(data, size)); !written) {
        return reject(written.error().transient ? MHD_HTTP_SERVICE_UNAVAILABLE
                                                : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      written.error().reason);
    }
    return true;
}

bool FormUpload::text_chunk(const std::string& key, std::string& value, std::size_t cap,
                            const char* data, std::uint64_t off, std::size_t size) {
    if (off == 0 && !value.empty()) {
        return reject(MHD_HTTP_BAD_REQUEST, "the form has two \"" + key + "\" fields");
    }
    if (value.size() + size > cap) {
        return reject(MHD_HTTP_BAD_REQUEST, "form field \"" + key + "\" is longer than " +
                                                std::to_string(cap) + " bytes");
    }
    value.append(data, size);
    // Metadata is JSON, where newlines and tabs are fine; the others are names and ids.
    if (key != "metadata" && has_control(value)) {
        return reject(MHD_HTTP_BAD_REQUEST, "form field \"" + key + "\" has control characters");
    }
    return true;
}

bool FormUpload::reject(unsigned status, std::string reason) {
    if (!rejected_) rejected_ = Rejection{status, std::move(reason)};
    return false;
}

}  // namespace imgspool::upload
