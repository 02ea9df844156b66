#include "store/s3/multipart_upload.hpp"

#include <vector>

#include "common/log.hpp"
#include "store/s3/xml_text.hpp"

namespace imgspool::s3 {

namespace {

// Aborts the upload and says so in the failure's reason.
Error abort_upload(S3Client& client, const std::string& key, const std::string& upload_id,
                   Error failure) {
    const S3Request abort{"DELETE", key, {{"uploadId", upload_id}},
                          {},       {},  "DELETE " + key + " (abort multipart upload)"};
    auto aborted = client.perform_one(abort);
    if (aborted) {
        failure.reason += "; the multipart upload was aborted";
    } else {
        failure.reason += "; aborting the multipart upload failed too (" + aborted.error().reason +
                          "): remove upload " + upload_id +
                          " with a lifecycle rule or `aws s3api abort-multipart-upload`";
        log::error("S3 multipart upload left behind",
                   {{"key", key}, {"upload_id", upload_id}, {"reason", aborted.error().reason}});
    }
    return failure;
}

}  // namespace

std::string complete_multipart_body(const std::vector<std::string>& etags) {
    std::string xml = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < etags.size(); ++i) {
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
               xml_escape(etags[i]) + "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    return xml;
}

Status upload_multipart(S3Client& client, const std::string& key, std::string_view bytes,
                        const NameValues& object_headers, std::uint64_t part_size) {
    const S3Request create{"POST",         key, {{"uploads", ""}},
                           object_headers, {},  "POST " + key + " (create multipart upload)"};
    auto created = client.perform_one(create);
    if (!created) return created.error();
    const auto upload_id = xml_tag_text(created->body, "UploadId");
    if (!upload_id || upload_id->empty()) {
        return make_error(Stage::store, create.label + ": the answer holds no UploadId");
    }

    const std::size_t parts = (bytes.size() + part_size - 1) / part_size;
    std::vector<S3Request> part_requests;
    part_requests.reserve(parts);
    for (std::size_t i = 0; i < parts; ++i) {
        const std::string number = std::to_string(i + 1);
        part_requests.push_back(
            S3Request{"PUT",
                      key,
                      {{"partNumber", number}, {"uploadId", *upload_id}},
                      {},
                      bytes.substr(i * part_size, part_size),
                      "PUT " + key + " (part " + number + " of " + std::to_string(parts) + ")"});
    }
    auto uploaded = client.perform(part_requests);
    if (!uploaded) return abort_upload(client, key, *upload_id, uploaded.error());

    std::vector<std::string> etags;
    for (std::size_t i = 0; i < parts; ++i) {
        std::string etag = uploaded.value()[i].header("etag");
        if (etag.empty()) {
            return abort_upload(
                client, key, *upload_id,
                make_error(Stage::store, part_requests[i].label + ": the answer holds no ETag"));
        }
        etags.push_back(std::move(etag));
    }

    const std::string body = complete_multipart_body(etags);
    const S3Request complete{"POST",
                             key,
                             {{"uploadId", *upload_id}},
                             {{"Content-Type", "application/xml"}},
                             body,
                             "POST " + key + " (complete multipart upload)"};
    auto completed = client.perform_one(complete);
    if (!completed) return abort_upload(client, key, *upload_id, completed.error());
    return ok_status();
}

}  // namespace imgspool::s3
