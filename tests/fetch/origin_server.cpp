#include "tests/fetch/origin_server.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace imgspool::fetch_test {

namespace {

const std::filesystem::path kOriginJs = IMGSPOOL_ORIGIN_JS;

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

// A GET that ignores any proxy of the environment (a test may set http_proxy on purpose).
std::string get(const std::string& url) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
    if (!easy) throw std::runtime_error("curl_easy_init failed");
    std::string body;
    CURL* e = easy.get();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        throw std::runtime_error("GET " + url + " failed (" + std::to_string(status) + ")");
    return body;
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

std::filesystem::path make_temp_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "imgspool-origin-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    return pattern;
}

// Reads the first line the child prints, waiting up to 20 s.
std::string read_line(int fd) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        char buf[512];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<std::size_t>(n));
    }
    return line;
}

}  // namespace

std::optional<std::string> OriginServer::unavailable() {
    if (!on_path("node")) return "node is not on PATH (install nodejs to run the fetch tests)";
    return std::nullopt;
}

OriginServer::OriginServer(const std::map<std::string, std::string>& files)
    : dir_(make_temp_dir()) {
    for (const auto& [name, bytes] : files) {
        std::ofstream out(dir_ / name, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            stop();
            throw std::runtime_error("cannot write " + (dir_ / name).string());
        }
    }
    int in_pipe[2];
    int out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    std::string node = "node";
    std::string script = kOriginJs.string();
    std::string dir = dir_.string();
    char* argv[] = {node.data(), script.data(), dir.data(), nullptr};
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in_pipe[0]);
    close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    if (rc != 0) {
        close(out_pipe[0]);
        pid_ = -1;
        stop();
        throw std::runtime_error("cannot start node: " + std::string(strerror(rc)));
    }
    const std::string line = read_line(out_pipe[0]);
    close(out_pipe[0]);
    if (line.find('\n') == std::string::npos) {
        stop();
        throw std::runtime_error("the origin did not report its ports: " + line);
    }
    try {
        const nlohmann::json ports = nlohmann::json::parse(line.substr(0, line.find('\n')));
        port1_ = ports.at("port1").get<int>();
        port2_ = ports.at("port2").get<int>();
        port6_ = ports.at("port6").get<int>();
    } catch (const nlohmann::json::exception& e) {
        stop();
        throw std::runtime_error("the origin reported \"" + line + "\": " + e.what());
    }
}

OriginServer::~OriginServer() {
    stop();
}

void OriginServer::stop() {
    if (stdin_fd_ >= 0) close(stdin_fd_);  // origin.js exits when its stdin closes
    stdin_fd_ = -1;
    if (pid_ > 0) {
        const pid_t pid = pid_;
        pid_ = -1;
        bool gone = false;
        for (int i = 0; i < 100 && !gone; ++i) {
            gone = waitpid(pid, nullptr, WNOHANG) == pid;
            if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (!gone) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

std::string OriginServer::url1(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port1_) + path;
}

std::string OriginServer::url2(const std::string& path) const {
    return "http://127.0.0.2:" + std::to_string(port2_) + path;
}

std::string OriginServer::url6(const std::string& path) const {
    return "http://[::1]:" + std::to_string(port6_) + path;
}

nlohmann::json OriginServer::stats() const {
    return nlohmann::json::parse(get(url1("/_stats")));
}

void OriginServer::reset() const {
    (void)get(url1("/_reset"));
}

}  // namespace imgspool::fetch_test
