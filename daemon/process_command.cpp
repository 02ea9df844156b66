// `imgspool process`: the same pipeline on the given files, copied in (never moved), with one
// JSON line per file on stdout.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include <vips/vips.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/printable_json.hpp"
#include "common/printable_name.hpp"
#include "daemon/commands.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/progress_display.hpp"
#include "daemon/runtime.hpp"
#include "pipeline/finish.hpp"
#include "pipeline/worker_pool.hpp"
#include "store/variant_json.hpp"
#include "watcher/claim.hpp"

namespace imgspool {
namespace {

// Deferrals `process` waits out for one file before it reports it deferred.
constexpr int kMaxWaits = 3;

// Prints each finished job as one JSON line, in the order they finish.
class LinePrinter final : public JobObserver {
  public:
    void job_finished(const JobOutcome& out) override {
        nlohmann::json line = {{"upload_id", out.upload_id},
                               {"file", file_of(out.upload_id)},
                               {"status", out.success ? "complete" : "failed"}};
        if (out.success) {
            nlohmann::json outputs = nlohmann::json::object();
            for (const StoredVariant& v : out.outputs) {
                outputs[v.variant + "." + v.format] = v.url;
            }
            line["outputs"] = outputs;
            line["placeholders"] = placeholders_json_value(out.placeholders);
            line["cache_hit"] = out.cache_hit;
            line["path"] = out.final_path.string();
        } else {
            line["stage"] = stage_name(out.error->stage);
            line["error"] = out.error->reason;
            line["path"] = out.final_path.string();
        }
        print(line);
        if (!out.success) failed_ = true;
    }

    // File names are bytes: printed as printable text, with "file_bytes_hex" beside "file"
    // when the name is not valid UTF-8.
    void print(nlohmann::json line) {
        if (line.contains("file")) {
            const std::string& file = line["file"].get_ref<const std::string&>();
            if (!is_valid_utf8(file)) line["file_bytes_hex"] = hex_bytes(file);
        }
        const std::string text = dump_printable(line) + "\n";
        std::lock_guard lock(mutex_);
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    }

    void remember(const std::string& upload_id, const std::string& file) {
        std::lock_guard lock(mutex_);
        files_[upload_id] = file;
    }

    // A job still deferred when `process` stops waiting for it.
    void deferred(const JobOutcome& out) {
        print({{"upload_id", out.upload_id},
               {"file", file_of(out.upload_id)},
               {"status", "deferred"},
               {"stage", out.error ? stage_name(out.error->stage) : "internal"},
               {"error", out.error ? out.error->reason : std::string()}});
        failed_ = true;
    }

    bool any_failed() const { return failed_; }
    void mark_failed() { failed_ = true; }

  private:
    std::string file_of(const std::string& upload_id) {
        std::lock_guard lock(mutex_);
        return files_[upload_id];
    }

    std::mutex mutex_;
    std::map<std::string, std::string> files_;
    std::atomic<bool> failed_{false};
};

// Copies a user's file into work/<upload_id>/<name>, refusing anything but a regular file.
Status copy_in(const std::string& file, const std::filesystem::path& to) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
        return make_error(Stage::claim, "cannot read: " + fs::errno_text(errno), file);
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error(Stage::claim, "not a regular file: only regular files are taken", file);
    }
    if (Status st2 = fs::make_dirs(to.parent_path()); !st2) return st2;
    std::error_code ec;
    std::filesystem::copy_file(file, to, std::filesystem::copy_options::none, ec);
    if (ec) return make_error(Stage::claim, "cannot copy into work/: " + ec.message(), file);
    return ok_status();
}

}  // namespace

int process_files(Config config, const std::string& spool_name,
                  const std::vector<std::string>& files) {
    auto locks = lock_instance(config);
    if (!locks) {
        std::fprintf(stderr, "imgspool: %s\n", locks.error().reason.c_str());
        return 1;
    }
    auto rt = open_runtime(std::move(config));
    if (!rt) {
        std::fprintf(stderr, "imgspool: %s\n", rt.error().message().c_str());
        return 2;
    }
    Runtime& runtime = rt.value();
    const SpoolLayout* spool = spool_name.empty() ? &runtime.config.spools.front()
                                                  : find_spool(runtime.config, spool_name);
    if (!spool) {
        std::fprintf(stderr, "imgspool: no spool named \"%s\" in %s\n", spool_name.c_str(),
                     runtime.config.file.c_str());
        return 2;
    }
    const int workers = std::min<int>(runtime.config.effective_workers(),
                                      std::max<int>(1, static_cast<int>(files.size())));
    vips_concurrency_set(vips_threads_per_worker(workers));

    LinePrinter printer;
    ProgressDisplay progress(std::cerr, ProgressDisplay::stderr_is_tty(), files.size());
    ObserverFanOut observers({&printer, &progress});
    // Files named on the command line are whole by their owner's word: one that is incomplete by
    // its format fails at once instead of waiting for the rest.
    PipelineSettings settings = pipeline_settings(runtime.config);
    settings.abandon_after = std::chrono::seconds(0);
    Pipeline pipeline(std::move(settings), *runtime.db, *runtime.store, &observers);
    // A fault that passes (store down, database busy) is waited out a few times here; after that
    // the file is reported deferred: it stays in work/, pending, for a daemon on this spool.
    WorkerPool pool(
        workers, static_cast<size_t>(runtime.config.daemon.queue_max),
        [&pipeline, &printer](const Job& first) {
            Job job = first;
            for (;;) {
                const JobOutcome out = pipeline.run(job);
                if (!out.retry_at) return;
                if (job.deferrals >= kMaxWaits) {
                    printer.deferred(out);
                    return;
                }
                std::this_thread::sleep_until(*out.retry_at);
                ++job.deferrals;
                if (out.seen) job.claimed = out.seen;
            }
        },
        [&runtime, &observers](const Job& job, const std::string& what) {
            fail_after_exception(*runtime.db, job, what, &observers);
        });

    for (const std::string& file : files) {
        const std::string upload_id = new_upload_id();
        const std::filesystem::path relative = std::filesystem::path(file).filename();
        const std::filesystem::path work_path = spool->work() / upload_id / relative;
        if (Status st = copy_in(file, work_path); !st) {
            printer.print({{"upload_id", upload_id},
                           {"file", file},
                           {"status", "failed"},
                           {"stage", stage_name(st.error().stage)},
                           {"error", st.error().reason}});
            printer.mark_failed();
            progress.job_finished(JobOutcome{});
            continue;
        }
        printer.remember(upload_id, file);
        if (Status st = runtime.db->insert_job(upload_id, spool->name,
                                               printable_name(relative.native()), spool->profile);
            !st) {
            std::fprintf(stderr, "imgspool: %s\n", st.error().message().c_str());
            pool.stop(true);
            return 2;
        }
        pool.submit(Job{upload_id, *spool, work_path, relative, std::nullopt, 0});
    }
    pool.stop(true);
    progress.finish();
    return printer.any_failed() ? 1 : 0;
}

}  // namespace imgspool
