// imgspool: turns a folder into an image pipeline. The command line lives here; each
// subcommand is in its own file.
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "common/log.hpp"
#include "daemon/commands.hpp"
#include "daemon/signals.hpp"
#include "pipeline/render.hpp"

#ifndef IMGSPOOL_VERSION
#define IMGSPOOL_VERSION "0.0.0"
#endif

using namespace imgspool;

namespace {

Result<Config> load(const std::string& path) {
    auto config = load_config(path);
    if (!config) std::fprintf(stderr, "imgspool: %s\n", config.error().message().c_str());
    return config;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "imgspool " IMGSPOOL_VERSION
        ": watches spool folders, renders web derivatives of dropped images with libvips,\n"
        "stores them (local folder or S3), records every job in SQLite and moves each original\n"
        "to done/ or failed/ (with NAME.error.json).",
        "imgspool"};
    app.set_version_flag("--version", "imgspool " IMGSPOOL_VERSION);
    app.require_subcommand(1);
    std::string config_path;
    auto add_config = [&config_path](CLI::App* cmd) {
        cmd->add_option("-c,--config", config_path, "TOML config file (see imgspool.example.toml)")
            ->required()
            ->check(CLI::ExistingFile);
    };

    CLI::App* run = app.add_subcommand(
        "run",
        "Run the daemon in the foreground; SIGTERM/SIGINT stop it cleanly (exit 0), SIGHUP "
        "reloads the config file (a config with errors is rejected and the running one stays). "
        "Refuses to start (exit 1) while another imgspool holds the state_dir or a spool root.");
    add_config(run);

    CLI::App* process = app.add_subcommand(
        "process",
        "Process FILEs once (copied in, never moved); one JSON line per file on stdout; "
        "exit 0 only if all succeeded.");
    add_config(process);
    std::string spool;
    std::vector<std::string> files;
    process->add_option("--spool", spool,
                        "spool whose profile and folders to use (default: first)");
    process->add_option("FILE", files, "image files")->required();

    CLI::App* status = app.add_subcommand(
        "status",
        "Jobs by status, in flight, today's failures, throughput per hour and cache hit "
        "rate; or one job's detail with UPLOAD_ID.");
    add_config(status);
    std::string upload_id;
    bool json = false;
    status->add_option("UPLOAD_ID", upload_id, "a job's upload_id");
    status->add_flag("--json", json, "machine-readable output");

    CLI::App* check =
        app.add_subcommand("check-config",
                           "Validate the config, print the effective values (secrets masked) and "
                           "check the store; exit non-zero on error.");
    add_config(check);

    CLI::App* reload = app.add_subcommand(
        "reload",
        "Send SIGHUP to the daemon running on the config's state_dir (the pid in "
        "<state_dir>/imgspool.lock), which reloads its config; exit 1 when no daemon runs.");
    add_config(reload);

    CLI11_PARSE(app, argc, argv);
    ignore_process_signals();

    if (!log::configure_from_env()) {
        std::fprintf(stderr, "imgspool: LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    // `process` reports every file on stdout already; its stderr carries warnings (and the
    // progress bar on a terminal) unless LOG_LEVEL asks for more.
    if (*process && !std::getenv("LOG_LEVEL")) log::set_level(log::Level::warn);
    auto config = load(config_path);
    if (!config) return 2;
    if (*check) return check_config(std::move(config).value());
    if (*status) return show_status(std::move(config).value(), upload_id, json);
    if (*reload) return reload_daemon(config.value());

    if (Status st = init_vips(argv[0]); !st) {
        std::fprintf(stderr, "imgspool: %s\n", st.error().message().c_str());
        return 2;
    }
    if (*run) return run_daemon(std::move(config).value());
    return process_files(std::move(config).value(), spool, files);
}
