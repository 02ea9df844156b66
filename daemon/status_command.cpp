// `imgspool status`: job counts by status, or one job's detail; a table for people, --json for
// scripts.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "daemon/commands.hpp"
#include "store/job_db.hpp"

namespace imgspool {
namespace {

nlohmann::json job_json(const JobRecord& r) {
    nlohmann::json outputs = nlohmann::json::array();
    for (const StoredVariant& v : r.outputs) {
        outputs.push_back({{"variant", v.variant},
                           {"format", v.format},
                           {"key", v.key},
                           {"url", v.url},
                           {"width", v.width},
                           {"height", v.height},
                           {"bytes", v.bytes}});
    }
    return {{"upload_id", r.upload_id},
            {"spool", r.spool},
            {"source", r.source_name},
            {"profile", r.profile},
            {"status", r.status},
            {"progress", r.progress},
            {"error", r.error},
            {"stage", r.error_stage},
            {"source_hash", r.source_hash},
            {"original_size", r.original_size},
            {"width", r.width},
            {"height", r.height},
            {"format", r.format},
            {"created_at", r.created_at},
            {"updated_at", r.updated_at},
            {"outputs", outputs}};
}

void print_job_table(const JobRecord& r) {
    auto row = [](const char* k, const std::string& v) {
        if (!v.empty()) std::printf("%-14s %s\n", k, v.c_str());
    };
    row("upload_id", r.upload_id);
    row("status", r.status + " (" + std::to_string(r.progress) + "%)");
    row("spool", r.spool);
    row("source", r.source_name);
    row("profile", r.profile);
    if (r.width) {
        row("image", r.format + " " + std::to_string(r.width) + "x" + std::to_string(r.height) +
                         ", " + std::to_string(r.original_size) + " bytes");
    }
    row("source_hash", r.source_hash);
    if (!r.error.empty()) row("error", r.error_stage + ": " + r.error);
    row("created_at", r.created_at);
    row("updated_at", r.updated_at);
    for (const StoredVariant& v : r.outputs) {
        std::printf("  %-8s %-5s %5dx%-5d %9llu  %s\n", v.variant.c_str(), v.format.c_str(),
                    v.width, v.height, static_cast<unsigned long long>(v.bytes), v.url.c_str());
    }
}

}  // namespace

int show_status(Config config, const std::string& upload_id, bool json) {
    if (!std::filesystem::exists(config.database_path())) {
        std::fprintf(stderr, "imgspool: no database yet at %s (has the daemon run?)\n",
                     config.database_path().c_str());
        return 1;
    }
    auto db = JobDb::open(config.database_path());
    if (!db) {
        std::fprintf(stderr, "imgspool: %s\n", db.error().message().c_str());
        return 1;
    }
    if (!upload_id.empty()) {
        auto rec = db.value()->find(upload_id);
        if (!rec) {
            std::fprintf(stderr, "imgspool: no job with upload_id %s\n", upload_id.c_str());
            return 1;
        }
        if (json)
            std::printf("%s\n", job_json(*rec).dump(2).c_str());
        else
            print_job_table(*rec);
        return 0;
    }
    const auto counts = db.value()->counts_by_status();
    if (json) {
        std::printf("%s\n", nlohmann::json(counts).dump().c_str());
        return 0;
    }
    std::printf("%-12s %8s\n", "status", "jobs");
    std::int64_t total = 0;
    for (const auto& [status, n] : counts) {
        std::printf("%-12s %8lld\n", status.c_str(), static_cast<long long>(n));
        total += n;
    }
    std::printf("%-12s %8lld\n", "total", static_cast<long long>(total));
    return 0;
}

}  // namespace imgspool
