#include "pipeline/pipeline.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "pipeline/finish.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/manifest.hpp"
#include "pipeline/render.hpp"
#include "pipeline/source_read.hpp"
#include "watcher/read_lease.hpp"

namespace imgspool {
namespace {

using Clock = std::chrono::steady_clock;

// Retries of a failed move out of work/ for a fault that does not pass by itself (EACCES, ...).
constexpr int kMaxMoveRetries = 3;

std::string extension_of(const Rendered& r) {
    return format_extension(r.format);
}

// A source that still cannot be fetched abandon_after after the job was recorded is not
// coming back by itself (an origin gone for good): the job fails instead of waiting forever.
void give_up_on_old_source(Error& err, const JobRecord& record, const PipelineSettings& settings) {
    const auto created = parse_iso_utc(record.created_at);
    if (!created) return;
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now() - *created);
    if (age < settings.abandon_after) return;
    err.transient = false;
    err.reason += " (still failing " + std::to_string(age.count()) +
                  " s after the job was recorded; [daemon] abandon_after_s)";
}

}  // namespace

// What a job carries from one step to the next.
struct Pipeline::Work {
    Work(const Job& j, std::shared_ptr<const PipelineSettings> s, std::shared_ptr<ObjectStore> st)
        : job(j), settings(std::move(s)), store(std::move(st)) {}
    const Job& job;
    // Held for the whole run: a reload that swaps either leaves this run as it started.
    std::shared_ptr<const PipelineSettings> settings;
    std::shared_ptr<ObjectStore> store;
    const Profile* profile = nullptr;
    std::string profile_name;  // the spool's, or the one a manifest or an upload asked for
    std::string origin;        // drop | manifest | http, as recorded
    std::string cache_key;
    std::string bytes;
    FileState read_state;           // the file the bytes came from
    std::optional<FileState> seen;  // the file's state last seen (for a deferral)
    SourceInfo info;
    std::string hash;
    std::vector<Rendered> rendered;
    std::vector<StoredVariant> outputs;
    Placeholders placeholders;             // rendered, or from the cache
    std::vector<std::string> stored_keys;  // written to the store by this run
    bool cache_hit = false;
    // Held from the commit until the original has moved to done/: no other process opens the
    // file for writing meanwhile (it would wait for the lease).
    std::optional<ReadLease> lease;
};

Pipeline::Pipeline(PipelineSettings settings, JobDb& db, std::shared_ptr<ObjectStore> store,
                   JobObserver* observer)
    : current_(std::move(settings), std::move(store)),
      db_(db),
      observer_(observer),
      rng_(std::random_device{}()) {}

Pipeline::Pipeline(PipelineSettings settings, JobDb& db, ObjectStore& store, JobObserver* observer)
    // An empty owner: the store is borrowed.
    : Pipeline(std::move(settings), db,
               std::shared_ptr<ObjectStore>(std::shared_ptr<void>(), &store), observer) {}

std::shared_ptr<const PipelineSettings> Pipeline::settings_for(const Job& job) const {
    return job.settings ? job.settings : current_.settings();
}

JobOutcome Pipeline::run(const Job& job, Heartbeat* heartbeat) {
    auto found = db_.find(job.upload_id);
    if (!found && found.error().transient) {
        // Nothing is known about the job while the database does not answer: try it later.
        if (observer_) observer_->job_started(job);
        JobOutcome out = begin_outcome(job);
        defer(job, *settings_for(job), found.error(), out);
        report(out);
        return out;
    }
    // A permanent read error is left to start_attempt, which refuses with the reason.
    const std::optional<JobRecord> record = found ? std::move(*found) : std::nullopt;
    if (record) {
        if (record->status == "complete") return finish_completed(job, *record);
        if (record->status == "failed") return finish_failed(job, *record);
    }
    const auto started = Clock::now();
    if (observer_) observer_->job_started(job);
    Work w(job, settings_for(job), current_.store());
    w.origin = record ? record->request.origin : "drop";
    JobOutcome out = begin_outcome(job);

    // The pipeline, in order. Each step either fills `w` or returns the reason it cannot.
    const auto next_step = [heartbeat] {
        if (heartbeat) heartbeat->beat();
        return true;
    };
    Status st = step_start(w);
    if (st && next_step()) st = step_read(w, heartbeat);
    if (st && next_step()) st = step_validate(w);
    if (st && next_step()) st = step_hash_and_lookup(w);
    if (st && !w.cache_hit && next_step()) st = step_render(w);
    if (st && !w.cache_hit && next_step()) st = step_store(w);
    if (st && next_step()) st = step_commit(w, started);
    next_step();

    if (!w.profile_name.empty()) out.profile = w.profile_name;
    out.original_bytes = w.bytes.size();
    out.width = w.info.width;
    out.height = w.info.height;
    out.format = w.bytes.empty() ? "" : format_name(w.info.format);
    out.cache_hit = w.cache_hit;
    out.outputs = w.outputs;
    out.placeholders = w.placeholders;
    out.seen = w.seen;
    if (!w.cache_hit) {
        for (const StoredVariant& v : w.outputs) out.output_bytes += v.bytes;
    }
    Error err;
    if (!st) {
        err = st.error();
        if (err.file.empty()) err.file = job.relative.string();
    }
    if (!st && err.transient && err.stage == Stage::fetch && record) {
        give_up_on_old_source(err, *record, *w.settings);
    }
    if (!st && claim_lost(err)) {
        abandon(job, err, out);
    } else if (st) {
        finish_done(job, *w.settings, out);
    } else if (err.transient) {
        // What this run stored stays: the next run writes the same keys.
        defer(job, *w.settings, err, out);
    } else {
        finish_failure(job, *w.settings, err, out, &w);
    }
    out.elapsed = Clock::now() - started;
    report(out);
    return out;
}

JobOutcome Pipeline::begin_outcome(const Job& job) const {
    JobOutcome out;
    out.upload_id = job.upload_id;
    out.spool = job.spool.name;
    out.profile = job.spool.profile;
    out.relative = job.relative;
    return out;
}

Status Pipeline::use_profile(Work& w, const std::string& name) {
    auto it = w.settings->profiles.find(name);
    if (it == w.settings->profiles.end()) {
        return make_error(Stage::config, "unknown profile \"" + name + "\"");
    }
    w.profile = &it->second;
    w.profile_name = name;
    // A cached set is valid only for the same profile settings, key layout and store.
    w.cache_key = sha256_hex(it->second.fingerprint() + "\n" + w.settings->key_template + "\n" +
                             w.store->describe());
    return ok_status();
}

Status Pipeline::step_start(Work& w) {
    if (Status st = use_profile(w, w.job.spool.profile); !st) return st;
    // Counted before the run: a run that kills the daemon is known at the next start.
    if (Status st = db_.start_attempt(w.job.upload_id); !st) return st;
    log::info("job started", {{"upload_id", w.job.upload_id},
                              {"spool", w.job.spool.name},
                              {"source", w.job.relative.string()},
                              {"profile", w.job.spool.profile}});
    return ok_status();
}

Status Pipeline::step_read(Work& w, Heartbeat* heartbeat) {
    if (is_manifest_name(w.job.relative)) return step_fetch(w, heartbeat);
    // The size limit is checked before reading, so a huge drop never lands in memory.
    auto source =
        read_claimed_source(w.job.work_path, w.job.claimed,
                            {w.settings->limits.max_bytes, w.settings->abandon_after}, w.seen);
    if (!source) return source.error();
    w.bytes = std::move(source->bytes);
    w.read_state = source->state;
    return ok_status();
}

// A manifest names its source instead of carrying it: what it asks for is recorded with the job,
// the source is fetched, and the job goes on with those bytes. The manifest itself is the file
// that moves to done/ or failed/.
Status Pipeline::step_fetch(Work& w, Heartbeat* heartbeat) {
    auto file = read_claimed_source(w.job.work_path, w.job.claimed,
                                    {kMaxManifestBytes, w.settings->abandon_after}, w.seen);
    if (!file) return file.error();
    w.read_state = file->state;
    auto manifest = parse_manifest(file->bytes);
    if (!manifest) return manifest.error();
    if (!manifest->profile.empty()) {
        if (Status st = use_profile(w, manifest->profile); !st) return st;
    }
    JobRequest request;
    request.origin = w.origin == "http" ? "http" : "manifest";
    request.source_url = manifest->source;
    request.user_id = manifest->user_id;
    request.tool = manifest->tool;
    request.ref = manifest->ref;
    request.metadata_json = manifest->metadata_json;
    request.profile = manifest->profile;
    if (Status st = db_.set_request(w.job.upload_id, request); !st) return st;
    log::info("fetching source",
              {{"upload_id", w.job.upload_id}, {"source_url", manifest->source}});
    // The fetch policy in force now, not the job's snapshot: a host taken out of allow_hosts by
    // a reload is not asked again, not even by a job claimed before.
    const auto current = current_.settings();
    if (!current->fetch_source) {
        return make_error(Stage::fetch, "fetching sources is not set up in this process");
    }
    auto bytes = current->fetch_source(manifest->source, w.settings->limits.max_bytes, heartbeat);
    if (!bytes) return bytes.error();
    w.bytes = std::move(bytes).value();
    return ok_status();
}

Status Pipeline::step_validate(Work& w) {
    auto info = validate_source(w.bytes, w.settings->limits);
    if (!info) return info.error();
    if (Status st = check_frames(*info, *w.profile); !st) return st;
    w.info = info.value();
    return set_progress(w.job.upload_id, 10);
}

Status Pipeline::step_hash_and_lookup(Work& w) {
    w.hash = sha256_hex(w.bytes);
    if (Status st = db_.set_source(w.job.upload_id, w.hash, w.bytes.size(), w.info.width,
                                   w.info.height, format_name(w.info.format));
        !st) {
        return st;
    }
    auto cached = db_.cache_lookup(w.hash, w.cache_key);
    if (!cached && cached.error().transient) return cached.error();
    if (!cached) {
        // An unreadable cache row costs a render, never the job.
        log::warn("derivative cache unreadable; rendering",
                  {{"upload_id", w.job.upload_id}, {"error", cached.error().message()}});
    } else if (*cached) {
        w.outputs = std::move((*cached)->outputs);
        w.placeholders = std::move((*cached)->placeholders);
        w.cache_hit = true;
    }
    return ok_status();
}

Status Pipeline::step_render(Work& w) {
    auto rendered = render(w.bytes, w.info, *w.profile);
    if (!rendered) return rendered.error();
    w.rendered = std::move(rendered->outputs);
    w.placeholders = std::move(rendered->placeholders);
    return set_progress(w.job.upload_id, 60);
}

Status Pipeline::step_store(Work& w) {
    std::vector<PutObject> objects;
    objects.reserve(w.rendered.size());
    for (const Rendered& r : w.rendered) {
        const std::string ext = extension_of(r);
        std::string key = expand_key(w.settings->key_template, w.job.upload_id, r.variant, ext,
                                     w.job.spool.name, w.profile_name);
        objects.push_back(PutObject{key, format_mime(r.format), r.bytes});
        w.outputs.push_back(StoredVariant{r.variant,
                                          format_name(r.format),
                                          std::move(key),
                                          {},
                                          r.width,
                                          r.height,
                                          r.bytes.size(),
                                          r.frames});
    }
    if (Status st = w.store->put_all(objects); !st) {
        // An earlier, deferred run of this job may have stored some of these keys: a permanent
        // failure removes them all (deleting a key that is not there is fine).
        if (!st.error().transient) {
            for (const PutObject& o : objects) w.stored_keys.push_back(o.key);
        }
        return st;
    }
    for (StoredVariant& v : w.outputs) {
        v.url = w.store->url_for(v.key);
        w.stored_keys.push_back(v.key);
    }
    return set_progress(w.job.upload_id, 90);
}

Status Pipeline::step_commit(Work& w, TimePoint started) {
    // The bytes recorded must be the bytes in work/ now, and stay so until they are in done/.
    ReadLease lease = ReadLease::take(w.job.work_path);
    if (lease.writers() == Writers::present) {
        return make_transient(Stage::claim,
                              "another process opened the file for writing while it was "
                              "processed; waiting for it to settle again");
    }
    std::optional<FileState> now =
        lease.fd() >= 0 ? fstat_state(lease.fd()) : lstat_state(w.job.work_path);
    if (now) w.seen = now;
    if (!now || *now != w.read_state) {
        const std::string change =
            now ? describe_change(w.read_state, *now) : std::string("it vanished");
        return make_transient(Stage::claim, "the file changed while it was processed (" + change +
                                                "); waiting for it to settle again");
    }
    if (lease.held()) w.lease = std::move(lease);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    // A cache hit stored nothing new, so it must not overwrite the cache row.
    return db_.complete(w.job.upload_id, w.outputs, w.cache_hit ? "" : w.cache_key, w.cache_hit,
                        ms.count(), w.placeholders);
}

void Pipeline::finish_done(const Job& job, const PipelineSettings& settings, JobOutcome& out) {
    out.success = true;
    auto moved = move_to_done(job.spool, job.work_path, job.relative);
    if (!moved) {
        // The job is committed; the original stays in work/ and the move is tried again.
        retry_move(job, settings, moved.error(), out);
        return;  // final_path stays empty: the original is still in work/
    }
    remove_work_folder(job.spool, job.upload_id);
    out.final_path = moved.value();
}

void Pipeline::finish_failure(const Job& job, const PipelineSettings& settings, const Error& err,
                              JobOutcome& out, const Work* run) {
    out.success = false;
    out.error = err;
    if (Status st = db_.fail(job.upload_id, err); !st) {
        if (claim_lost(st.error())) {
            abandon(job, st.error(), out);
            return;
        }
        // Not recorded: the job stays in work/ and the next run decides again.
        log::error("cannot record failure", {{"upload_id", job.upload_id},
                                             {"spool", job.spool.name},
                                             {"source", job.relative.string()},
                                             {"error", st.error().message()}});
        retry_move(job, settings, st.error(), out);
        return;
    }
    // Only now that the failure is recorded as this node's: the keys are the upload_id's, so an
    // adopter of the job writes the very same ones.
    if (run) remove_stored(*run);
    FailureNote note{job.upload_id, job.spool.name, job.relative.string(), err};
    auto moved = move_to_failed(job.spool, job.work_path, job.relative, note);
    if (!moved) {
        retry_move(job, settings, moved.error(), out);
        return;  // final_path stays empty: the original is still in work/
    }
    remove_work_folder(job.spool, job.upload_id);
    out.final_path = moved.value();
}

void Pipeline::retry_move(const Job& job, const PipelineSettings& settings, const Error& err,
                          JobOutcome& out) {
    std::error_code ec;
    const bool still_there =
        std::filesystem::exists(std::filesystem::symlink_status(job.work_path, ec));
    if (!still_there || (!err.transient && job.deferrals >= kMaxMoveRetries)) {
        // Gone, or a fault that more tries in this run will not mend: the next start tries again.
        log::error("cannot move the original out of work/", {{"upload_id", job.upload_id},
                                                             {"spool", job.spool.name},
                                                             {"source", job.relative.string()},
                                                             {"error", err.message()}});
        return;
    }
    std::chrono::milliseconds delay;
    {
        std::lock_guard lock(rng_mutex_);
        delay = retry_delay(job.deferrals, settings.retry, rng_);
    }
    out.retry_at = std::chrono::system_clock::now() + delay;
    log::error("cannot move the original out of work/; trying again later",
               {{"upload_id", job.upload_id},
                {"spool", job.spool.name},
                {"source", job.relative.string()},
                {"error", err.message()},
                {"retry_in_s", std::chrono::duration<double>(delay).count()}});
}

void Pipeline::defer(const Job& job, const PipelineSettings& settings, const Error& err,
                     JobOutcome& out) {
    std::chrono::milliseconds delay = settings.recheck_after;
    if (err.stage != Stage::claim) {  // claim: the file is not whole or changed; others back off
        std::lock_guard lock(rng_mutex_);
        delay = retry_delay(job.deferrals, settings.retry, rng_);
    }
    out.deferred = true;
    out.error = err;
    out.retry_at = std::chrono::system_clock::now() + delay;
    if (Status st = db_.defer(job.upload_id, err, *out.retry_at); !st) {
        if (claim_lost(st.error())) {
            abandon(job, st.error(), out);
            return;
        }
        // Kept in memory; a restart finds the job in work/ and runs it again.
        log::warn("cannot record the deferral",
                  {{"upload_id", job.upload_id}, {"error", st.error().message()}});
    }
}

void Pipeline::remove_stored(const Work& w) {
    if (w.stored_keys.empty()) return;
    if (Status st = w.store->remove_all(w.stored_keys); !st) {
        log::warn("cannot delete the objects of a failed job", {{"upload_id", w.job.upload_id},
                                                                {"spool", w.job.spool.name},
                                                                {"source", w.job.relative.string()},
                                                                {"error", st.error().message()}});
    }
}

Status Pipeline::set_progress(const std::string& upload_id, int progress) {
    Status st = db_.set_progress(upload_id, progress);
    if (st || claim_lost(st.error())) return st;
    // Progress is for people watching; a busy database must not stop the job for it.
    log::debug("cannot record progress",
               {{"upload_id", upload_id}, {"error", st.error().message()}});
    return ok_status();
}

void Pipeline::report(const JobOutcome& out) {
    if (out.abandoned) {  // abandon() has logged it
        if (observer_) observer_->job_abandoned(out);
        return;
    }
    const double seconds = out.elapsed.count();
    if (out.deferred) {
        const double retry_in =
            std::chrono::duration<double>(*out.retry_at - std::chrono::system_clock::now()).count();
        log::warn("job deferred", {{"upload_id", out.upload_id},
                                   {"spool", out.spool},
                                   {"source", out.relative.string()},
                                   {"profile", out.profile},
                                   {"seconds", seconds},
                                   {"stage", stage_name(out.error->stage)},
                                   {"error", out.error->reason},
                                   {"retry_in_s", retry_in}});
        if (observer_) observer_->job_deferred(out);
        return;
    }
    if (out.success) {
        // The derivative set's size, also for a cache hit (which stored nothing new).
        std::uint64_t set_bytes = 0;
        for (const StoredVariant& v : out.outputs) set_bytes += v.bytes;
        const double ratio =
            set_bytes ? static_cast<double>(out.original_bytes) / static_cast<double>(set_bytes)
                      : 0.0;
        log::info("job complete",
                  {{"upload_id", out.upload_id},
                   {"spool", out.spool},
                   {"source", out.relative.string()},
                   {"profile", out.profile},
                   {"seconds", seconds},
                   {"original_bytes", static_cast<unsigned long long>(out.original_bytes)},
                   {"output_bytes", static_cast<unsigned long long>(set_bytes)},
                   {"compression_ratio", ratio},
                   {"variants", static_cast<unsigned long long>(out.outputs.size())},
                   {"cache_hit", out.cache_hit},
                   {"path", out.final_path.string()}});
    } else {
        log::warn("job failed",
                  {{"upload_id", out.upload_id},
                   {"spool", out.spool},
                   {"source", out.relative.string()},
                   {"profile", out.profile},
                   {"seconds", seconds},
                   {"original_bytes", static_cast<unsigned long long>(out.original_bytes)},
                   {"stage", stage_name(out.error->stage)},
                   {"error", out.error->reason},
                   {"path", out.final_path.string()}});
    }
    if (observer_) observer_->job_finished(out);
}

JobOutcome Pipeline::finish_completed(const Job& job, const JobRecord& record) {
    JobOutcome out = begin_outcome(job);
    out.outputs = record.outputs;
    out.placeholders = record.placeholders;
    finish_done(job, *settings_for(job), out);
    log::info("recovered committed job", {{"upload_id", job.upload_id},
                                          {"spool", job.spool.name},
                                          {"source", job.relative.string()},
                                          {"path", out.final_path.string()}});
    return out;
}

JobOutcome Pipeline::finish_failed(const Job& job, const JobRecord& record) {
    JobOutcome out = begin_outcome(job);
    Stage stage = Stage::internal;
    for (Stage s :
         {Stage::config, Stage::watch, Stage::claim, Stage::fetch, Stage::validate, Stage::hash,
          Stage::cache, Stage::render, Stage::store, Stage::commit, Stage::move}) {
        if (record.error_stage == stage_name(s)) stage = s;
    }
    finish_failure(job, *settings_for(job), make_error(stage, record.error, job.relative.string()),
                   out);
    return out;
}

}  // namespace imgspool
