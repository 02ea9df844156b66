// The last step of every job: the original leaves work/ for done/ or failed/, never
// overwriting anything (a clash gets a ".N" suffix), and a failure leaves NAME.error.json
// beside the original in failed/.
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/spool_layout.hpp"

namespace imgspool {

// Moves `from` (in work/) to done/<relative>. Returns the path used.
Result<std::filesystem::path> move_to_done(const SpoolLayout& spool,
                                           const std::filesystem::path& from,
                                           const std::filesystem::path& relative);

struct FailureNote {
    std::string upload_id;
    std::string spool;
    std::string source_name;
    Error error;
};

// Moves `from` to failed/<relative> (choosing a name whose NAME.error.json is free too) and
// writes NAME.error.json with upload_id, spool, source, stage, error and time. Returns the path
// of the original in failed/.
Result<std::filesystem::path> move_to_failed(const SpoolLayout& spool,
                                             const std::filesystem::path& from,
                                             const std::filesystem::path& relative,
                                             const FailureNote& note);

// Removes work/<upload_id>/ and the empty folders below it once the original has left.
void remove_work_folder(const SpoolLayout& spool, const std::string& upload_id);

}  // namespace imgspool
