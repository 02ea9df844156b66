// One POST /images/upload body: libmicrohttpd's multipart parser feeding the `image` field into
// a PartFile as it arrives (never whole in memory) and keeping the small text fields, with every
// cap checked chunk by chunk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <microhttpd.h>

#include "upload/part_file.hpp"

namespace imgspool::upload {

// Why a request is turned away: the HTTP status and the reason for {"error": ...}.
struct Rejection {
    unsigned status = MHD_HTTP_BAD_REQUEST;
    std::string reason;
};

// The text fields of the form, as sent; "" when absent.
struct FormFields {
    std::string spool, profile, user_id;
    std::string metadata;     // raw text; checked to be a JSON object after the body
    std::string client_name;  // the image part's file name
};

class FormUpload {
  public:
    static constexpr std::size_t kFieldMax = 1024;          // spool, profile, user_id, file name
    static constexpr std::size_t kMetadataMax = 16 * 1024;  // the metadata field

    // The image is streamed to a PartFile in `temp_dir` named for `part_owner`.
    FormUpload(std::filesystem::path temp_dir, std::string part_owner, std::uint64_t max_bytes);
    FormUpload(const FormUpload&) = delete;
    FormUpload& operator=(const FormUpload&) = delete;

    // Attaches the multipart parser to the connection (its Content-Type names the boundary).
    // false: the body cannot be parsed; rejection() says why.
    bool attach(MHD_Connection* connection);
    // A chunk of the body. false once the form is rejected.
    bool feed(const char* data, std::size_t size);
    // After the last chunk: the form ended properly and held an image. false: rejection().
    bool finish();

    const std::optional<Rejection>& rejection() const { return rejected_; }
    const FormFields& fields() const { return fields_; }
    PartFile& image() { return image_; }

  private:
    struct ParserDeleter {
        void operator()(MHD_PostProcessor* p) const { MHD_destroy_post_processor(p); }
    };

    static MHD_Result on_field(void* cls, MHD_ValueKind kind, const char* key, const char* filename,
                               const char* content_type, const char* transfer_encoding,
                               const char* data, uint64_t off, size_t size);
    bool field(const std::string& name, const char* filename, const char* data, std::uint64_t off,
               std::size_t size);
    bool image_chunk(const char* filename, const char* data, std::uint64_t off, std::size_t size);
    bool text_chunk(const std::string& key, std::string& value, std::size_t cap, const char* data,
                    std::uint64_t off, std::size_t size);
    bool reject(unsigned status, std::string reason);

    std::filesystem::path temp_dir_;
    std::string part_owner_;
    std::uint64_t max_bytes_;
    std::unique_ptr<MHD_PostProcessor, ParserDeleter> parser_;
    PartFile image_;
    bool image_seen_ = false;
    bool sniffed_ = false;
    std::string head_;  // the image's first bytes, for the magic-byte check
    FormFields fields_;
    std::optional<Rejection> rejected_;
};

}  // namespace imgspool::upload
