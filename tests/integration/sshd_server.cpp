#include "tests/integration/sshd_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/loopback.hpp"

namespace imgspool::it {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

// A socket descriptor with an owner.
class Socket {
  public:
    Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

  private:
    int fd_;
};

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

bool accepts_connections(int port) {
    Socket s;
    sockaddr_in addr = loopback(port);
    return s.fd() >= 0 && ::connect(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

std::string slurp(const stdfs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void run_or_throw(const stdfs::path& binary, const std::vector<std::string>& args,
                  const stdfs::path& dir) {
    const stdfs::path out = dir / "setup.log";
    ChildProcess child(binary, args, out, out);
    const std::optional<ExitStatus> st = child.wait_for_exit(30s);
    if (!st || !st->exited || st->code != 0) {
        throw std::runtime_error(binary.string() + " failed (" +
                                 (st ? st->describe() : std::string("timed out")) +
                                 "): " + slurp(out));
    }
}

std::string current_user() {
    const passwd* pw = ::getpwuid(::getuid());
    if (!pw) throw std::runtime_error("the current user has no passwd entry");
    return pw->pw_name;
}

}  // namespace

SshdServer::SshdServer(SshdOptions options) : options_(std::move(options)) {
    std::string pattern = (stdfs::temp_directory_path() / "imgspool-sshd-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    if (options_.authorized_keys.empty()) options_.authorized_keys = dir_ / "authorized_keys";
    try {
        write_keys_and_config();
        for (int attempt = 0; attempt < 5; ++attempt) {
            if (try_start()) return;
        }
        throw std::runtime_error("sshd did not start; its log:\n" + log());
    } catch (...) {
        std::error_code ec;
        stdfs::remove_all(dir_, ec);
        throw;
    }
}

SshdServer::~SshdServer() {
    if (sshd_) sshd_->kill_now();
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
}

void SshdServer::write_keys_and_config() {
    const stdfs::path keygen = "/usr/bin/ssh-keygen";
    for (const char* key : {"host_key", "client_key"}) {
        run_or_throw(keygen,
                     {"-q", "-t", "ed25519", "-N", "", "-C", key, "-f", (dir_ / key).string()},
                     dir_);
    }
    stdfs::copy_file(dir_ / "client_key.pub", options_.authorized_keys,
                     stdfs::copy_options::overwrite_existing);
    ::chmod(options_.authorized_keys.c_str(), 0644);
    // sshd refuses to start as root without its privilege-separation folder (a package install
    // leaves it to systemd to create at boot; containers have no such boot).
    if (::geteuid() == 0) {
        std::error_code ec;
        stdfs::create_directories("/run/sshd", ec);
        ::chmod("/run/sshd", 0755);
    }
}

bool SshdServer::try_start() {
    // Another process may take the port before sshd binds it: the caller retries with a new one
    // when sshd cannot listen.
    port_ = free_port();
    if (port_ == 0) {
        throw std::runtime_error(std::string("cannot bind 127.0.0.1:0: ") + std::strerror(errno));
    }
    const stdfs::path config = dir_ / "sshd_config";
    {
        std::ofstream c(config, std::ios::trunc);
        c << "Port " << port_ << "\n"
          << "ListenAddress 127.0.0.1\n"
          << "HostKey " << (dir_ / "host_key").string() << "\n"
          << "AuthorizedKeysFile " << options_.authorized_keys.string() << "\n"
          << "PubkeyAuthentication yes\n"
          << "PasswordAuthentication no\n"
          << "KbdInteractiveAuthentication no\n"
          << "UsePAM no\n"
          // The temp folder's modes are mkdtemp's and /tmp's, not a home folder's.
          << "StrictModes no\n"
          // CI runs as root; any other user logs in as itself.
          << "PermitRootLogin prohibit-password\n"
          << "PidFile none\n"
          << "Subsystem sftp internal-sftp\n"
          << "LogLevel VERBOSE\n";
        // Last: an included drop-in may open a Match block, which runs to the end of its file.
        for (const std::string& line : options_.extra_config) c << line << "\n";
    }
    sshd_ = std::make_unique<ChildProcess>(
        "/usr/sbin/sshd", std::vector<std::string>{"-D", "-e", "-f", config.string()},
        dir_ / "sshd.log", dir_ / "sshd.log");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!sshd_->running()) return false;
        if (accepts_connections(port_)) return true;
        std::this_thread::sleep_for(20ms);
    }
    sshd_->kill_now();
    return false;
}

std::string SshdServer::destination() const {
    return current_user() + "@127.0.0.1";
}

std::vector<std::string> SshdServer::client_options() const {
    return {"-F", "/dev/null",
            "-i", client_key().string(),
            "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=" + (dir_ / "known_hosts").string(),
            "-o", "StrictHostKeyChecking=no",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"};
}

std::string SshdServer::ssh_command() const {
    std::string cmd = "/usr/bin/ssh";
    for (const std::string& o : client_options()) cmd += " " + o;
    return cmd + " -p " + std::to_string(port_);
}

std::string SshdServer::log() const {
    return slurp(dir_ / "sshd.log");
}

}  // namespace imgspool::it
