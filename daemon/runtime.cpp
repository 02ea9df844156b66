#include "daemon/runtime.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/fs.hpp"
#include "daemon/open_job_db.hpp"
#include "daemon/source_fetch.hpp"
#include "store/local_store.hpp"
#include "store/s3/s3_store.hpp"
#include "upload/part_file.hpp"

namespace imgspool {

Result<std::unique_ptr<ObjectStore>> make_store(const StoreSettings& settings) {
    if (settings.kind == "local") {
        return std::unique_ptr<ObjectStore>(
            std::make_unique<LocalStore>(settings.path, settings.public_base_url));
    }
    if (settings.kind == "s3") {
        return std::unique_ptr<ObjectStore>(
            std::make_unique<S3Store>(settings.s3, settings.public_base_url));
    }
    return make_error(Stage::config, "[store] kind \"" + settings.kind + "\" is not supported");
}

namespace {

// Uploads being received wait as work/<node>.<random>.part (upload::PartFile), directly in work/
// where no job's files are; one left by a stop or a crash was never answered with 202, so nothing
// refers to it. Nodes sharing the spool (PostgreSQL) receive uploads into the same work/, so each
// removes only the files named for it. A SQLite daemon is alone on its spools: it removes every
// .part there, those named before uploads carried the node too.
void remove_unfinished_uploads(const SpoolLayout& spool, const std::string& node,
                               bool alone_on_spool) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(spool.work(), ec)) {
        const std::filesystem::path& path = entry.path();
        const bool ours = alone_on_spool ? path.extension() == ".part"
                                         : upload::is_part_name_of(path.filename().native(), node);
        std::error_code type_ec;
        if (ours && entry.is_regular_file(type_ec) && !entry.is_symlink(type_ec)) {
            std::filesystem::remove(path, type_ec);
        }
    }
}

}  // namespace

Result<Runtime> open_runtime(Config config) {
    if (Status st = fs::make_dirs(config.daemon.state_dir); !st) return st.error();
    for (const SpoolLayout& spool : config.spools) {
        for (const auto& dir : {spool.inbox(), spool.work(), spool.done(), spool.failed()}) {
            if (Status st = fs::make_dirs(dir); !st) return st.error();
        }
        remove_unfinished_uploads(spool, config.daemon.node, !uses_postgresql(config));
    }
    auto db = open_job_db(config);
    if (!db) return db.error();
    auto store = make_store(config.store);
    if (!store) return store.error();
    return Runtime{std::move(config), std::move(db).value(), std::move(store).value()};
}

PipelineSettings pipeline_settings(const Config& config) {
    const DaemonSettings& d = config.daemon;
    PipelineSettings s;
    s.limits = config.limits;
    s.key_template = config.store.key_template;
    s.profiles = config.profiles;
    s.retry = {std::chrono::seconds(d.retry_min_s), std::chrono::seconds(d.retry_max_s)};
    s.recheck_after = std::chrono::milliseconds(std::max(d.settle_ms, 100));
    s.abandon_after = std::chrono::seconds(d.abandon_after_s);
    s.fetch_source = make_source_fetch(config);
    return s;
}

int vips_threads_per_worker(int workers) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return std::max(1, cores / std::max(1, workers));
}

const SpoolLayout* find_spool(const Config& config, const std::string& name) {
    for (const SpoolLayout& s : config.spools) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

}  // namespace imgspool
