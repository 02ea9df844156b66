// The folders of one spool: users drop into inbox/, the daemon owns work/, done/ and failed/.
#pragma once

#include <filesystem>
#include <string>

namespace imgspool {

struct SpoolLayout {
    std::string name;            // [[spool]] name
    std::filesystem::path root;  // holds the four folders below
    std::string profile;         // profile name used for this spool's files

    std::filesystem::path inbox() const { return root / "inbox"; }
    std::filesystem::path work() const { return root / "work"; }
    std::filesystem::path done() const { return root / "done"; }
    std::filesystem::path failed() const { return root / "failed"; }
};

}  // namespace imgspool
