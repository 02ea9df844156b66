// The subcommands of the imgspool binary; each returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include "daemon/config.hpp"

namespace imgspool {

int run_daemon(Config config);
int process_files(Config config, const std::string& spool_name,
                  const std::vector<std::string>& files);
int show_status(Config config, const std::string& upload_id, bool json);
int check_config(Config config);
// Sends SIGHUP to the daemon holding config's state_dir; exit 1 when none runs.
int reload_daemon(const Config& config);

}  // namespace imgspool
