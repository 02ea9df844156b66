// `imgspool status`: what the job database says — counts by status, jobs in flight, today's
// failures, throughput per hour and the cache hit rate, from the views documented in
// docs/queries.md — or one job's detail; tables for people, --json for scripts.
#include <algorithm>
#include <cstdio>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/printable_json.hpp"
#include "common/printable_name.hpp"
#include "daemon/commands.hpp"
#include "daemon/open_job_db.hpp"
#include "store/variant_json.hpp"

namespace imgspool {
namespace {

// Everything read back from the database may hold any bytes (a name, a reason quoting a path):
// the JSON is written with dump_printable and the tables with cell(), so neither ever throws.

// The metadata column as JSON (an object), null when the job has none. Its CHECK is SQLite's
// json_valid, which lets bytes that are not UTF-8 through: such text is shown as the string
// it is (dump_printable escapes the bytes).
nlohmann::json metadata_json_value(const std::string& text) {
    if (text.empty()) return nullptr;
    auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    return value.is_discarded() ? nlohmann::json(text) : value;
}

nlohmann::json job_json(const JobRecord& r) {
    // The shape of images.outputs; odd bytes in a key or URL are escaped by dump_printable.
    const nlohmann::json outputs = variants_json_value(r.outputs);
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
            {"attempts", r.attempts},
            {"crashes", r.crashes},
            {"node", r.node},
            {"adopted_from", r.adopted_from},
            {"next_attempt_at", r.next_attempt_at},
            {"last_error", r.last_error},
            {"origin", r.request.origin},
            {"source_url", r.request.source_url},
            {"user_id", r.request.user_id},
            {"tool", r.request.tool},
            {"ref", r.request.ref},
            {"client_name", r.request.client_name},
            {"metadata", metadata_json_value(r.request.metadata_json)},
            {"outputs", outputs},
            {"placeholders", placeholders_json_value(r.placeholders)}};
}

// Text for a terminal: printable_name, and control characters (a newline, ESC) as \xNN too,
// so a hostile name can neither break a table row nor send escape sequences to the terminal.
std::string cell(std::string_view text) {
    std::string out;
    for (const char ch : printable_name(text)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        } else {
            out += ch;
        }
    }
    return out;
}

void print_job_table(const JobRecord& r) {
    auto row = [](const char* k, const std::string& v) {
        if (!v.empty()) std::printf("%-14s %s\n", k, cell(v).c_str());
    };
    row("upload_id", r.upload_id);
    row("status", r.status + " (" + std::to_string(r.progress) + "%)");
    row("spool", r.spool);
    row("source", r.source_name);
    row("origin", r.request.origin);
    row("source_url", r.request.source_url);
    row("client_name", r.request.client_name);
    row("user_id", r.request.user_id);
    row("tool", r.request.tool);
    row("ref", r.request.ref);
    row("metadata", r.request.metadata_json);
    row("profile", r.profile);
    if (r.width) {
        row("image", r.format + " " + std::to_string(r.width) + "x" + std::to_string(r.height) +
                         ", " + std::to_string(r.original_size) + " bytes");
    }
    row("source_hash", r.source_hash);
    if (!r.error.empty()) row("error", r.error_stage + ": " + r.error);
    if (r.attempts) row("attempts", std::to_string(r.attempts));
    if (r.crashes) row("crashes", std::to_string(r.crashes));
    row("node", r.node);
    row("adopted_from", r.adopted_from);
    row("next_attempt", r.next_attempt_at);
    row("last_error", r.last_error);
    row("created_at", r.created_at);
    row("updated_at", r.updated_at);
    row("blurhash", r.placeholders.blurhash);
    row("lqip", r.placeholders.lqip);
    for (const StoredVariant& v : r.outputs) {
        std::printf("  %-8s %-5s %5dx%-5d %9llu  %s\n", cell(v.variant).c_str(),
                    cell(v.format).c_str(), v.width, v.height,
                    static_cast<unsigned long long>(v.bytes), cell(v.url).c_str());
    }
}

// The recent hours shown by the throughput table.
constexpr int kThroughputHours = 24;

// Everything the summary shows, read once.
struct Summary {
    std::map<std::string, std::int64_t> counts;
    std::vector<WaitingFile> waiting;
    std::vector<InFlightJob> in_flight;
    std::vector<DeferredJob> deferred;
    std::vector<FailedJob> failures;
    std::vector<HourThroughput> hours;
    CacheHitRate cache;
    std::vector<NodeStatus> nodes;
};

Result<Summary> read_summary(JobDb& db) {
    Summary s;
    auto counts = db.counts_by_status();
    if (!counts) return counts.error();
    s.counts = std::move(*counts);
    auto waiting = db.waiting_files();
    if (!waiting) return waiting.error();
    s.waiting = std::move(*waiting);
    auto deferred = db.jobs_deferred();
    if (!deferred) return deferred.error();
    s.deferred = std::move(*deferred);
    auto in_flight = db.jobs_in_flight();
    if (!in_flight) return in_flight.error();
    s.in_flight = std::move(*in_flight);
    auto failures = db.failures_today();
    if (!failures) return failures.error();
    s.failures = std::move(*failures);
    auto hours = db.throughput_per_hour(kThroughputHours);
    if (!hours) return hours.error();
    s.hours = std::move(*hours);
    auto cache = db.cache_hit_rate();
    if (!cache) return cache.error();
    s.cache = *cache;
    auto nodes = db.nodes();
    if (!nodes) return nodes.error();
    s.nodes = std::move(*nodes);
    return s;
}

// The status counts stay top-level keys ({"complete": 3, ...}) so `jq .complete` works.
nlohmann::json summary_json(const Summary& s) {
    nlohmann::json out = nlohmann::json::object();
    std::int64_t total = 0;
    for (const auto& [status, n] : s.counts) {
        out[status] = n;
        if (status != "waiting") total += n;  // waiting files are not jobs yet
    }
    out["total"] = total;
    nlohmann::json waiting = nlohmann::json::array();
    for (const WaitingFile& f : s.waiting) {
        waiting.push_back({{"spool", f.spool},
                           {"source", f.source_name},
                           {"size", f.size},
                           {"reason", f.reason},
                           {"since", f.since}});
    }
    out["waiting_files"] = waiting;
    nlohmann::json deferred = nlohmann::json::array();
    for (const DeferredJob& d : s.deferred) {
        deferred.push_back({{"upload_id", d.upload_id},
                            {"spool", d.spool},
                            {"source", d.source_name},
                            {"attempts", d.attempts},
                            {"next_attempt_at", d.next_attempt_at},
                            {"last_error", d.last_error},
                            {"node", d.node}});
    }
    out["deferred"] = deferred;
    nlohmann::json in_flight = nlohmann::json::array();
    for (const InFlightJob& j : s.in_flight) {
        in_flight.push_back({{"upload_id", j.upload_id},
                             {"spool", j.spool},
                             {"source", j.source_name},
                             {"status", j.status},
                             {"progress", j.progress},
                             {"created_at", j.created_at},
                             {"updated_at", j.updated_at},
                             {"age_s", j.age_s},
                             {"node", j.node}});
    }
    out["in_flight"] = in_flight;
    nlohmann::json failures = nlohmann::json::array();
    for (const FailedJob& f : s.failures) {
        failures.push_back({{"upload_id", f.upload_id},
                            {"spool", f.spool},
                            {"source", f.source_name},
                            {"stage", f.stage},
                            {"reason", f.reason},
                            {"failed_at", f.failed_at},
                            {"node", f.node}});
    }
    out["failures_today"] = failures;
    nlohmann::json hours = nlohmann::json::array();
    for (const HourThroughput& h : s.hours) {
        hours.push_back({{"hour", h.hour},
                         {"completed", h.completed},
                         {"failed", h.failed},
                         {"avg_duration_ms", h.avg_duration_ms ? nlohmann::json(*h.avg_duration_ms)
                                                               : nlohmann::json(nullptr)}});
    }
    out["throughput_per_hour"] = hours;
    out["cache"] = {
        {"hits", s.cache.hits}, {"misses", s.cache.misses}, {"hit_rate_pct", s.cache.hit_rate_pct}};
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeStatus& n : s.nodes) {
        nodes.push_back({{"node", n.node},
                         {"host", n.host},
                         {"state", n.state},
                         {"started_at", n.started_at},
                         {"heartbeat_at", n.heartbeat_at},
                         {"heartbeat_age_s", n.heartbeat_age_s},
                         {"lease_s", n.lease_s},
                         {"workers", n.workers},
                         {"in_flight", n.in_flight},
                         {"done_last_hour", n.done_last_hour},
                         {"failed_last_hour", n.failed_last_hour},
                         {"jobs_per_s", n.jobs_per_s},
                         {"version", n.version},
                         {"cache_scope", n.cache_scope}});
    }
    out["nodes"] = nodes;
    return out;
}

// Columns sized to their widest cell; numbers right-aligned.
class Table {
  public:
    Table(std::vector<std::string> headers, std::vector<bool> numeric)
        : headers_(std::move(headers)), numeric_(std::move(numeric)) {}
    void add(std::vector<std::string> row) {
        for (std::string& c : row) c = cell(c);
        rows_.push_back(std::move(row));
    }

    void print() const {
        std::vector<std::size_t> width(headers_.size());
        for (std::size_t c = 0; c < headers_.size(); ++c) {
            width[c] = headers_[c].size();
            for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
        }
        print_row(headers_, width);
        for (const auto& row : rows_) print_row(row, width);
    }

  private:
    void print_row(const std::vector<std::string>& row,
                   const std::vector<std::size_t>& width) const {
        std::string line = " ";
        for (std::size_t c = 0; c < row.size(); ++c) {
            const std::string pad(width[c] - row[c].size(), ' ');
            const bool last = c + 1 == row.size();
            line += ' ';
            line += numeric_[c] ? pad + row[c] : row[c] + (last ? "" : pad);
            if (!last) line += ' ';
        }
        std::printf("%s\n", line.c_str());
    }

    std::vector<std::string> headers_;
    std::vector<bool> numeric_;
    std::vector<std::vector<std::string>> rows_;
};

// 42s, 3m05s, 2h07m
std::string duration_text(std::int64_t s) {
    char buf[32];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                      static_cast<long long>(s % 60));
    else
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                      static_cast<long long>(s % 3600 / 60));
    return buf;
}

void print_nodes(const std::vector<NodeStatus>& nodes) {
    if (nodes.empty()) {
        std::printf("\nNodes: none has run yet\n");
        return;
    }
    std::printf("\nNodes (%zu)\n", nodes.size());
    Table t({"node", "host", "state", "heartbeat", "in_flight", "done_1h", "failed_1h",
             "jobs/s_5min", "version", "cache_scope"},
            {false, false, false, true, true, true, true, true, false, false});
    for (const NodeStatus& n : nodes) {
        char rate[32];
        std::snprintf(rate, sizeof rate, "%.2f", n.jobs_per_s);
        t.add({n.node, n.host, n.state, duration_text(n.heartbeat_age_s) + " ago",
               std::to_string(n.in_flight), std::to_string(n.done_last_hour),
               std::to_string(n.failed_last_hour), rate, n.version, n.cache_scope});
    }
    t.print();
    // Nodes that store to different places cannot reuse each other's derivatives.
    for (const NodeStatus& n : nodes) {
        if (n.cache_scope != nodes.front().cache_scope) {
            std::printf(
                "  note: the nodes store to different places (cache_scope differs): they "
                "share no derivative cache\n");
            break;
        }
    }
}

void print_summary(const Summary& s) {
    std::printf("Jobs by status\n");
    Table counts({"status", "jobs"}, {false, true});
    std::int64_t total = 0;
    for (const char* status : {"pending", "processing", "complete", "failed"}) {
        const auto it = s.counts.find(status);
        const std::int64_t n = it == s.counts.end() ? 0 : it->second;
        counts.add({status, std::to_string(n)});
        total += n;
    }
    counts.add({"total", std::to_string(total)});
    counts.print();

    if (s.waiting.empty()) {
        std::printf("\nWaiting in inboxes (not whole yet): none\n");
    } else {
        std::printf("\nWaiting in inboxes (not whole yet) (%zu, oldest first)\n", s.waiting.size());
        Table t({"since", "spool", "bytes", "source", "reason"},
                {false, false, true, false, false});
        for (const WaitingFile& f : s.waiting) {
            t.add({cell(f.since), cell(f.spool), std::to_string(f.size), cell(f.source_name),
                   cell(f.reason)});
        }
        t.print();
    }

    if (!s.deferred.empty()) {
        std::printf("\nDeferred (%zu, next run first)\n", s.deferred.size());
        Table t({"next_attempt_at", "upload_id", "spool", "attempts", "source", "last_error"},
                {false, false, false, true, false, false});
        for (const DeferredJob& d : s.deferred) {
            t.add({cell(d.next_attempt_at), cell(d.upload_id), cell(d.spool),
                   std::to_string(d.attempts), cell(d.source_name), cell(d.last_error)});
        }
        t.print();
    }

    if (s.in_flight.empty()) {
        std::printf("\nIn flight: none\n");
    } else {
        std::printf("\nIn flight (%zu, oldest first)\n", s.in_flight.size());
        Table t({"upload_id", "spool", "status", "progress", "age", "source"},
                {false, false, false, true, true, false});
        for (const InFlightJob& j : s.in_flight) {
            t.add({j.upload_id, j.spool, j.status, std::to_string(j.progress) + "%",
                   duration_text(j.age_s), j.source_name});
        }
        t.print();
    }

    if (s.failures.empty()) {
        std::printf("\nFailed today (UTC): none\n");
    } else {
        std::printf("\nFailed today (UTC) (%zu, newest first)\n", s.failures.size());
        Table t({"failed_at", "upload_id", "spool", "stage", "source", "reason"},
                {false, false, false, false, false, false});
        for (const FailedJob& f : s.failures) {
            t.add({f.failed_at, f.upload_id, f.spool, f.stage, f.source_name, f.reason});
        }
        t.print();
    }

    if (s.hours.empty()) {
        std::printf("\nThroughput per hour (UTC): no finished jobs yet\n");
    } else {
        std::printf("\nThroughput per hour (UTC, the %d most recent hours with jobs)\n",
                    kThroughputHours);
        Table t({"hour", "completed", "failed", "avg_ms"}, {false, true, true, true});
        for (const HourThroughput& h : s.hours) {
            t.add({h.hour, std::to_string(h.completed), std::to_string(h.failed),
                   h.avg_duration_ms ? std::to_string(*h.avg_duration_ms) : "-"});
        }
        t.print();
    }

    std::printf("\nDerivative cache (complete jobs): %lld hits, %lld misses, hit rate %.1f%%\n",
                static_cast<long long>(s.cache.hits), static_cast<long long>(s.cache.misses),
                s.cache.hit_rate_pct);
    print_nodes(s.nodes);
}

}  // namespace

int show_status(Config config, const std::string& upload_id, bool json) {
    std::error_code ec;  // the non-throwing overload: an unreadable state_dir is "no database"
    if (!uses_postgresql(config) && !std::filesystem::exists(config.database_path(), ec)) {
        std::fprintf(stderr, "imgspool: no database yet at %s (has the daemon run?)\n",
                     config.database_path().c_str());
        return 1;
    }
    auto db = open_job_db(config);
    if (!db) {
        std::fprintf(stderr, "imgspool: %s\n", db.error().message().c_str());
        return 1;
    }
    if (!upload_id.empty()) {
        auto rec = db.value()->find(upload_id);
        if (!rec) {
            std::fprintf(stderr, "imgspool: %s\n", rec.error().message().c_str());
            return 1;
        }
        if (!*rec) {
            std::fprintf(stderr, "imgspool: no job with upload_id %s\n", cell(upload_id).c_str());
            return 1;
        }
        if (json)
            std::printf("%s\n", dump_printable(job_json(**rec), 2).c_str());
        else
            print_job_table(**rec);
        return 0;
    }
    auto summary = read_summary(*db.value());
    if (!summary) {
        std::fprintf(stderr, "imgspool: %s\n", summary.error().message().c_str());
        return 1;
    }
    if (json)
        std::printf("%s\n", dump_printable(summary_json(*summary), 2).c_str());
    else
        print_summary(*summary);
    return 0;
}

}  // namespace imgspool
