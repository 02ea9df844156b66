#include "daemon/http_dropin.hpp"

#include "common/log.hpp"
#include "daemon/runtime.hpp"
#include "fetch/source_url.hpp"
#include "pipeline/manifest.hpp"

namespace imgspool {

namespace {

SpoolLayout http_spool(const Config& config) {
    const SpoolLayout* named = find_spool(config, config.http.spool);
    return named ? *named : config.spools.front();
}

upload::ImageView image_view(const JobRecord& r) {
    upload::ImageView v;
    v.upload_id = r.upload_id;
    v.status = r.status;
    v.progress = r.progress;
    if (r.status == "failed") v.error = r.error_stage + ": " + r.error;
    v.source = !r.request.source_url.empty()    ? r.request.source_url
               : !r.request.client_name.empty() ? r.request.client_name
                                                : r.source_name;
    v.metadata_json = r.request.metadata_json;
    v.user_id = r.request.user_id;
    v.tool = r.request.tool;
    v.ref = r.request.ref;
    for (const StoredVariant& o : r.outputs) {
        v.variants.push_back({o.variant, o.format, o.width, o.height, o.bytes, o.url});
    }
    v.blurhash = r.placeholders.blurhash;
    v.lqip = r.placeholders.lqip;
    return v;
}

}  // namespace

HttpDropIn::HttpDropIn(Intake& intake, JobDb& db, SwappableSettings& settings, const Config& config)
    : intake_(intake),
      db_(db),
      settings_(settings),
      node_(config.daemon.node),
      default_spool_(http_spool(config)) {}

void HttpDropIn::reconfigure(const Config& config) {
    std::lock_guard lock(mutex_);
    default_spool_ = http_spool(config);
}

std::optional<std::string> HttpDropIn::busy_reason() {
    return intake_.busy_reason();
}

std::filesystem::path HttpDropIn::temp_dir() {
    std::lock_guard lock(mutex_);
    // Directly in work/, where no job's files are (list_claimed skips it), and on the file
    // system of the jobs' folders, so taking an upload is one rename.
    return default_spool_.work();
}

// work/<node>.<random>.part: nodes sharing the spool remove only their own at start
// (remove_unfinished_uploads in runtime.cpp).
std::string HttpDropIn::part_owner() {
    return node_;
}

std::uint64_t HttpDropIn::max_bytes() {
    return settings_.settings()->limits.max_bytes;
}

Limits HttpDropIn::limits() {
    return settings_.settings()->limits;
}

Result<std::string> HttpDropIn::accept(upload::PreparedUpload up) {
    ReceivedUpload received;
    received.temp = up.temp;
    received.extension = up.extension;
    {
        std::lock_guard lock(mutex_);
        received.spool = up.spool.empty() ? default_spool_.name : up.spool;
    }
    received.request.origin = "http";
    received.request.user_id = up.user_id;
    received.request.metadata_json = up.metadata_json;
    received.request.client_name = up.client_name;
    received.request.profile = up.profile;
    return intake_.accept_upload(received);
}

Result<std::optional<upload::ImageView>> HttpDropIn::image(const std::string& upload_id) {
    auto record = db_.find(upload_id);
    if (!record) {
        // Not "unknown": the job may well exist. The client learns only that the record cannot
        // be read (the database's name and reason go to the log), and whether to try again.
        log::warn("cannot read the job record for GET /images",
                  {{"upload_id", upload_id}, {"error", record.error().message()}});
        if (record.error().transient) {
            return make_transient(Stage::commit,
                                  "the job record cannot be read now; try again shortly");
        }
        return make_error(Stage::commit, "the job record cannot be read");
    }
    if (!*record) return std::optional<upload::ImageView>();
    return std::optional<upload::ImageView>(image_view(**record));
}

Status HttpDropIn::check_manifest(std::string_view json) {
    auto manifest = parse_manifest(json);
    if (!manifest) return manifest.error();
    if (auto url = fetch::parse_source_url(manifest->source); !url) return url.error();
    return ok_status();
}

}  // namespace imgspool
