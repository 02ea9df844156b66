// Does a file's own format say all of it has arrived? A JPEG ends with its end-of-image marker
// after the last scan, a PNG with its IEND chunk, a GIF with its trailer; a WebP is as long as its
// RIFF header says; a TIFF's IFDs, the values they point to and its strips or tiles all lie within
// the file; a HEIF (HEIC, AVIF) has its ftyp, meta and mdat boxes whole.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool {

struct Wholeness {
    enum class Verdict { whole, incomplete, not_judged };
    Verdict verdict = Verdict::not_judged;
    // incomplete: what is missing, e.g. "incomplete JPEG: no end-of-image marker";
    // not_judged: why not, e.g. "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC" (validation then
    // gives its own reason).
    std::string reason;
};

// Judges bytes already in memory (the pipeline checks what it read).
//   whole:       the format's end is there (bytes after it, such as camera trailers, are fine);
//   incomplete:  empty, zero-filled where data should be (space reserved by Samba, aria2 ...),
//                a prefix of a magic number, or the format's end is missing;
//   not_judged:  not one of these formats, BigTIFF, or its structure is damaged (not cut short).
// Every proper prefix of a whole file in one of these formats is incomplete. Zeros inside image
// data (a WebP chunk's, a TIFF strip's, an mdat box's) cannot be told from pixels, though: space
// reserved there is only seen when structure after it is zero too.
Wholeness judge_bytes(std::string_view bytes);

// Judges a file on disk without mapping it (a writer that truncates would SIGBUS the daemon):
// opened O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK and read in small windows with pread(), PNG and
// WebP chunk bodies, GIF sub-block data, TIFF strips and HEIF box bodies skipped. A file larger
// than max_read is not_judged ("larger than N bytes: not read") so the size limit fails it later;
// not a regular file is not_judged. Cannot open or read: an Error (Stage::watch, transient when the
// errno passes by itself).
Result<Wholeness> judge_file(const std::filesystem::path& path, std::uint64_t max_read);

}  // namespace imgspool
