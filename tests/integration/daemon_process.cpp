#include "tests/integration/daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace imgspool::it {
namespace {

// Variables that imgspool reads as config overrides, and libpq's PG* defaults; a developer's
// shell must not change a test.
bool overrides_config(std::string_view entry) {
    for (std::string_view prefix :
         {"S3_", "AWS_",
          "CDN_URL=", "ENABLE_METRICS=", "METRICS_PORT=", "METRICS_BIND=", "FETCH_S3_",
          "IMGSPOOL_HTTP_TOKEN=", "IMGSPOOL_NODE=", "LOG_LEVEL=", "DATABASE_URL=", "PG"}) {
        if (entry.substr(0, prefix.size()) == prefix) return true;
    }
    return false;
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        if (!overrides_config(*e)) env.emplace_back(*e);
    }
    env.emplace_back("LOG_LEVEL=debug");
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (std::string& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// posix_spawn_file_actions_t with an owner.
class FileActions {
  public:
    FileActions() { posix_spawn_file_actions_init(&fa_); }
    ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    posix_spawn_file_actions_t* get() { return &fa_; }

  private:
    posix_spawn_file_actions_t fa_;
};

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

std::string ExitStatus::describe() const {
    return exited ? "exit " + std::to_string(code) : "signal " + std::to_string(signal);
}

std::filesystem::path imgspool_binary() {
    return IMGSPOOL_BINARY;
}

ChildProcess::ChildProcess(const std::filesystem::path& binary,
                           const std::vector<std::string>& args,
                           const std::filesystem::path& stdout_file,
                           const std::filesystem::path& stderr_file,
                           const std::vector<std::string>& extra_env) {
    std::vector<std::string> argv_strings{binary.string()};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<std::string> env_strings = child_environment(extra_env);
    std::vector<char*> argv = c_strings(argv_strings);
    std::vector<char*> envp = c_strings(env_strings);

    FileActions fa;
    // No O_CLOEXEC: glibc may open straight onto the target descriptor, which exec would close.
    constexpr int kFlags = O_WRONLY | O_CREAT | O_APPEND;
    posix_spawn_file_actions_addopen(fa.get(), 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(fa.get(), 1, stdout_file.c_str(), kFlags, 0644);
    posix_spawn_file_actions_addopen(fa.get(), 2, stderr_file.c_str(), kFlags, 0644);
    const int rc = posix_spawn(&pid_, argv[0], fa.get(), nullptr, argv.data(), envp.data());
    if (rc != 0) {
        throw std::runtime_error("cannot start " + binary.string() + ": " + std::strerror(rc));
    }
}

ChildProcess::~ChildProcess() {
    kill_now();
}

bool ChildProcess::reap(bool block) {
    if (status_) return true;
    int ws = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &ws, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != pid_) return false;
    ExitStatus st;
    st.exited = WIFEXITED(ws);
    if (st.exited) st.code = WEXITSTATUS(ws);
    if (WIFSIGNALED(ws)) st.signal = WTERMSIG(ws);
    status_ = st;
    return true;
}

bool ChildProcess::running() {
    return !reap(false);
}

void ChildProcess::send(int sig) {
    if (running()) ::kill(pid_, sig);
}

std::optional<ExitStatus> ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!reap(false)) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
}

void ChildProcess::kill_now() {
    if (pid_ <= 0 || status_) return;
    ::kill(pid_, SIGKILL);
    reap(true);
}

CommandResult run_imgspool(const std::vector<std::string>& args,
                           const std::filesystem::path& scratch_dir,
                           std::chrono::milliseconds timeout,
                           const std::vector<std::string>& extra_env) {
    static std::atomic<int> counter{0};
    const std::string n = std::to_string(counter++);
    const auto out_file = scratch_dir / ("command-" + n + ".out");
    const auto err_file = scratch_dir / ("command-" + n + ".err");
    CommandResult result;
    {
        ChildProcess child(imgspool_binary(), args, out_file, err_file, extra_env);
        std::optional<ExitStatus> st = child.wait_for_exit(timeout);
        if (!st) {
            child.kill_now();
            st = child.exit_status();
        }
        result.status = *st;
    }
    result.out = slurp(out_file);
    result.err = slurp(err_file);
    return result;
}

}  // namespace imgspool::it
