// Everything a command needs once the config is loaded: the database, the store and the
// pipeline, built in one place so `run` and `process` behave the same.
#pragma once

#include <memory>

#include "daemon/config.hpp"
#include "pipeline/pipeline.hpp"
#include "store/job_db.hpp"
#include "store/object_store.hpp"

namespace imgspool {

struct Runtime {
    Config config;
    std::unique_ptr<JobDb> db;
    std::shared_ptr<ObjectStore>
        store;  // shared: a reload swaps it while jobs finish on the old one
};

// Creates the state dir and the spools' folders, opens the database and the store.
Result<Runtime> open_runtime(Config config);

// The store named by [store] kind.
Result<std::unique_ptr<ObjectStore>> make_store(const StoreSettings& settings);

PipelineSettings pipeline_settings(const Config& config);

// libvips threads per worker: the cores shared out among the workers (at least 1).
int vips_threads_per_worker(int workers);

const SpoolLayout* find_spool(const Config& config, const std::string& name);

}  // namespace imgspool
