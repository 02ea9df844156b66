// Which names in inbox/ the watcher leaves alone (see is_ignored_name in spool_watcher.hpp).
#pragma once

#include <string_view>

namespace imgspool {

// Hidden folders (".name") are neither watched nor scanned, nor is anything inside them.
bool is_ignored_folder_name(std::string_view name);

}  // namespace imgspool
