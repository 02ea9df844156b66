// Names that mean "still being written" or "not for us": dotfiles (which include rsync's
// ".name.XXXXXX") and the temporary suffixes of browsers, WinSCP/FileZilla and office tools.
#include "watcher/ignored_names.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "watcher/spool_watcher.hpp"

namespace imgspool {

namespace {

bool ends_with_ignoring_case(std::string_view name, std::string_view suffix) {
    if (name.size() <= suffix.size()) return false;  // ".part" alone is a dotfile anyway
    auto tail = name.substr(name.size() - suffix.size());
    return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
    });
}

constexpr std::array<std::string_view, 4> kTemporarySuffixes = {".part", ".filepart", ".tmp",
                                                                ".crdownload"};

}  // namespace

bool is_ignored_name(std::string_view filename) {
    if (filename.empty() || filename.front() == '.') return true;
    return std::any_of(kTemporarySuffixes.begin(), kTemporarySuffixes.end(),
                       [&](std::string_view s) { return ends_with_ignoring_case(filename, s); });
}

bool is_ignored_folder_name(std::string_view name) {
    return name.empty() || name.front() == '.';
}

}  // namespace imgspool
