// A real OpenSSH server (Debian's /usr/sbin/sshd) on 127.0.0.1, for tests that upload with real
// clients: sftp and scp (through sshd's in-process internal-sftp, which holds the file open while
// it writes, as the separate sftp-server does) and rsync over ssh. Everything it needs lives in
// its own temp folder: config, host key, the client's key pair and authorized_keys, its log.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/daemon_process.hpp"

namespace imgspool::it {

struct SshdOptions {
    // Where the client's public key is written for sshd to read; empty: in the server's own
    // temp folder, which only its owner can read. A login as another user needs a file that
    // user can read (sshd reads it with the user's rights).
    std::filesystem::path authorized_keys{};
    // Lines appended to sshd_config, e.g. "Include /path/to/drop-in.conf".
    std::vector<std::string> extra_config{};
};

class SshdServer {
  public:
    // Starts sshd on a free port and returns once the port accepts connections. Throws
    // std::runtime_error (with sshd's log) when it cannot be started.
    explicit SshdServer(SshdOptions options = {});
    SshdServer(const SshdServer&) = delete;
    SshdServer& operator=(const SshdServer&) = delete;
    // Kills and reaps sshd (its session children end with their connections), removes the folder.
    ~SshdServer();

    int port() const { return port_; }
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path client_key() const { return dir_ / "client_key"; }
    // The address clients log in to: "USER@127.0.0.1", USER being the one running the test.
    std::string destination() const;

    // Options every ssh-based client takes, without the port (sftp and scp spell it -P, ssh -p):
    // the test's key only, its own known_hosts, no user config, never a prompt.
    std::vector<std::string> client_options() const;
    // "ssh OPTIONS -p PORT", for rsync's -e (split at spaces: no path here holds one).
    std::string ssh_command() const;

    std::string log() const;  // sshd's own log (-e), for failure messages

  private:
    void write_keys_and_config();
    bool try_start();  // false when sshd ended before listening (e.g. the port was taken)

    SshdOptions options_;
    std::filesystem::path dir_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> sshd_;
};

}  // namespace imgspool::it
