// The embedded default object store: files under a folder, written atomically (temporary file,
// fsync, rename, fsync of the folder), so a key never holds half an object, not even after a
// crash or a full disk.
#pragma once

#include <filesystem>
#include <string>

#include "store/object_store.hpp"

namespace imgspool {

// Which failures of the store folder pass without a config change. Transient: a full disk or
// quota (ENOSPC, EDQUOT), a read-only remount (EROFS: the kernel's answer to file-system errors,
// or maintenance; it passes once remounted), EIO (what NFS and thin-provisioned volumes report
// on write, fsync or close when their backing store is full or unreachable), and the passing
// faults of is_transient_errno. Permanent: EACCES and EPERM, like S3's AccessDenied (the
// folder's owner or mode is a configuration fault: failing at once makes it visible instead of
// growing a backlog of deferred jobs), and what no retry changes (ENOTDIR, ENAMETOOLONG, ...).
bool is_transient_store_errno(int err);

class LocalStore final : public ObjectStore {
  public:
    // public_base_url empty: URLs are file:// URLs of the stored files.
    LocalStore(std::filesystem::path root, std::string public_base_url);

    Status put_all(const std::vector<PutObject>& objects) override;
    // Unlinks each key's file (a missing one is fine) and the folders left empty by that, up to
    // the store folder.
    Status remove_all(const std::vector<std::string>& keys) override;
    std::string url_for(const std::string& key) const override;
    Status check() override;
    std::string describe() const override;

  private:
    std::filesystem::path root_;
    std::string public_base_url_;
};

}  // namespace imgspool
