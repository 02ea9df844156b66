#include "tests/s3/s3_harness.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace imgspool::s3_test {

namespace {

const std::filesystem::path kHarnessDir = IMGSPOOL_S3_HARNESS_DIR;

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* out) {
    std::string_view line(data, size * count);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) {
            value.remove_suffix(1);
        }
        (*static_cast<std::map<std::string, std::string>*>(out))[name] = std::string(value);
    }
    return size * count;
}

bool on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    if (path == nullptr) return false;
    std::string_view rest(path);
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const std::filesystem::path dir(std::string(rest.substr(0, colon)));
        if (access((dir / program).c_str(), X_OK) == 0) return true;
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    return false;
}

}  // namespace

HttpAnswer http(const std::string& method, const std::string& url, const std::string& body) {
    HttpAnswer answer;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
    CURL* e = easy.get();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer.body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &collect_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &answer.headers);
    if (method == "POST") {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    } else if (method == "HEAD") {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (method != "GET") {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (curl_easy_perform(e) == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &answer.status);
    }
    return answer;
}

std::optional<std::string> S3Harness::unavailable() {
    if (!on_path("node"))
        return "node is not on PATH (install nodejs to run the S3 integration tests)";
    if (!std::filesystem::exists(kHarnessDir / "node_modules" / "s3rver")) {
        return "the S3 test harness is not installed: run `ctest -R s3_harness_npm_ci` or `npm ci "
               "--prefix " +
               kHarnessDir.string() + "`";
    }
    return std::nullopt;
}

S3Harness::S3Harness(const std::vector<std::string>& env) {
    int in_pipe[2];
    int out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);

    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    const std::string script = (kHarnessDir / "start.js").string();
    std::string node = "node";
    char* argv[] = {node.data(), const_cast<char*>(script.c_str()), nullptr};
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(in_pipe[0]);
    close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    if (rc != 0) {
        close(out_pipe[0]);
        pid_ = -1;
        throw std::runtime_error("cannot start node: " + std::string(strerror(rc)));
    }

    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{out_pipe[0], POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        char buf[1024];
        const ssize_t n = read(out_pipe[0], buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<std::size_t>(n));
    }
    close(out_pipe[0]);
    if (line.find('\n') == std::string::npos) {
        stop();
        throw std::runtime_error("the S3 harness did not report its ports: " + line);
    }
    info_ = nlohmann::json::parse(line.substr(0, line.find('\n')));
}

S3Harness::~S3Harness() {
    stop();
}

void S3Harness::stop() {
    if (stdin_fd_ >= 0) close(stdin_fd_);  // start.js stops when its stdin closes
    stdin_fd_ = -1;
    if (pid_ <= 0) return;
    const pid_t pid = pid_;
    pid_ = -1;
    for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

S3Config S3Harness::config() const {
    S3Config c;
    c.bucket = info_.at("bucket");
    c.region = info_.at("region");
    c.endpoint = fault_url();
    c.access_key_id = info_.at("access_key_id");
    c.secret_access_key = info_.at("secret_access_key");
    c.connect_timeout_ms = 2000;
    c.request_timeout_ms = 10000;
    c.retry_base_delay_ms = 10;
    c.retry_max_delay_ms = 100;
    return c;
}

void S3Harness::stop_store() const {
    const HttpAnswer a = http("POST", info_.at("control").get<std::string>() + "/store/down");
    if (a.status != 200) throw std::runtime_error("cannot stop the fault proxy: " + a.body);
}

void S3Harness::restart_store() const {
    const HttpAnswer a = http("POST", info_.at("control").get<std::string>() + "/store/up");
    if (a.status != 200) throw std::runtime_error("cannot restart the fault proxy: " + a.body);
}

void S3Harness::inject(const nlohmann::json& fault) const {
    const HttpAnswer a = http("POST", fault_url() + "/_harness/faults", fault.dump());
    if (a.status != 200)
        throw std::runtime_error("fault proxy refused " + fault.dump() + ": " + a.body);
}

nlohmann::json S3Harness::faults() const {
    return nlohmann::json::parse(http("GET", fault_url() + "/_harness/faults").body);
}

nlohmann::json S3Harness::connections() const {
    return nlohmann::json::parse(http("GET", fault_url() + "/_harness/connections").body);
}

nlohmann::json S3Harness::verify_stats() const {
    return nlohmann::json::parse(http("GET", verify_url() + "/_harness/stats").body);
}

}  // namespace imgspool::s3_test
