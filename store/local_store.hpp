// The embedded default object store: files under a folder, written atomically.
#pragma once

#include <filesystem>
#include <string>

#include "store/object_store.hpp"

namespace imgspool {

class LocalStore final : public ObjectStore {
  public:
    // public_base_url empty: URLs are file:// URLs of the stored files.
    LocalStore(std::filesystem::path root, std::string public_base_url);

    Status put_all(const std::vector<PutObject>& objects) override;
    std::string url_for(const std::string& key) const override;
    Status check() override;
    std::string describe() const override;

  private:
    std::filesystem::path root_;
    std::string public_base_url_;
};

}  // namespace imgspool
