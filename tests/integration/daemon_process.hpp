// Runs the real imgspool binary as a child process: the daemon in the background, or a
// one-shot command whose output and exit code a test inspects.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace imgspool::it {

// How a child ended: exited with a code, or was killed by a signal.
struct ExitStatus {
    bool exited = false;
    int code = -1;                 // when exited
    int signal = 0;                // when killed
    std::string describe() const;  // "exit 0", "signal 9"
};

// One child process. The destructor kills (SIGKILL) and reaps it if it is still running, so a
// failing test never leaves a daemon behind.
class ChildProcess {
  public:
    // Starts `binary args...` with stdin from /dev/null and stdout/stderr appended to the given
    // files. The environment is the test's, minus variables that would change imgspool's config
    // (S3_*, AWS_*, CDN_URL, ENABLE_METRICS, METRICS_PORT), with LOG_LEVEL=debug, plus
    // `extra_env` ("NAME=VALUE" entries) set explicitly by the test.
    // Throws std::runtime_error when the spawn fails.
    ChildProcess(const std::filesystem::path& binary, const std::vector<std::string>& args,
                 const std::filesystem::path& stdout_file, const std::filesystem::path& stderr_file,
                 const std::vector<std::string>& extra_env = {});
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    pid_t pid() const { return pid_; }
    bool running();  // false once it has ended (and is reaped)
    void send(int sig);
    // Waits up to `timeout` for the child to end; nullopt if it is still running.
    std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds timeout);
    // SIGKILL and reap; a no-op once it has ended.
    void kill_now();
    const std::optional<ExitStatus>& exit_status() const { return status_; }

  private:
    bool reap(bool block);

    pid_t pid_ = -1;
    std::optional<ExitStatus> status_;
};

// The outcome of a one-shot command.
struct CommandResult {
    ExitStatus status;
    std::string out;
    std::string err;
};

// Runs imgspool with args to completion (killing it after `timeout`), capturing stdout and
// stderr through files in `scratch_dir`; `extra_env` as for ChildProcess.
CommandResult run_imgspool(const std::vector<std::string>& args,
                           const std::filesystem::path& scratch_dir,
                           std::chrono::milliseconds timeout = std::chrono::seconds(90),
                           const std::vector<std::string>& extra_env = {});

// The binary under test (from the build).
std::filesystem::path imgspool_binary();

}  // namespace imgspool::it
