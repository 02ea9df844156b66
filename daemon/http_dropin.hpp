// The daemon's side of the HTTP drop-in (upload/): uploads and manifests become jobs through
// intake, like dropped files; GET /images/{id} reads the job database.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/intake.hpp"
#include "pipeline/pipeline_settings.hpp"
#include "store/job_db.hpp"
#include "upload/upload_backend.hpp"

namespace imgspool {

class HttpDropIn final : public upload::UploadBackend {
  public:
    // `settings` gives the limits uploads are held to (a reload swaps them).
    HttpDropIn(Intake& intake, JobDb& db, SwappableSettings& settings, const Config& config);

    // A reload: [http] spool and the spools it may name. Any thread.
    void reconfigure(const Config& config);

    std::optional<std::string> busy_reason() override;
    std::filesystem::path temp_dir() override;
    std::string part_owner() override;
    std::uint64_t max_bytes() override;
    Limits limits() override;
    Result<std::string> accept(upload::PreparedUpload up) override;
    Result<std::optional<upload::ImageView>> image(const std::string& upload_id) override;
    Status check_manifest(std::string_view json) override;

  private:
    Intake& intake_;
    JobDb& db_;
    SwappableSettings& settings_;
    const std::string node_;  // [daemon] node, a restart-only key
    std::mutex mutex_;
    SpoolLayout default_spool_;  // [http] spool
};

}  // namespace imgspool
