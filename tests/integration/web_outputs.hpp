// Checks of the `web` profile's outputs by reading them back from the local object store.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {

// The object names the web profile stores for a source of this format ("jpeg" or "png"):
// small/medium/large in the source format and as WebP, plus the re-encoded original.
std::set<std::string> web_output_names(const std::string& source_format);

// Every object of upload_id under objects/images/<upload_id>/ exists, is exactly the expected
// set, has the right magic bytes and dimensions (original: src_w x src_h) and no EXIF/XMP.
// The source must be at least 800x800 (cover crops are never enlarged).
::testing::AssertionResult web_outputs_ok(const std::filesystem::path& objects,
                                          const std::string& upload_id,
                                          const std::string& source_format, int src_w, int src_h);

// One web-profile object (name as in web_output_names) given as bytes: the right magic bytes
// and dimensions (original: src_w x src_h), it decodes, and it carries no EXIF/XMP.
::testing::AssertionResult web_output_ok(const std::string& name, const std::string& bytes,
                                         int src_w, int src_h);

// The set of URLs recorded in images.urls for upload_id (empty if there is no row).
std::set<std::string> recorded_urls(SpoolFixture& f, const std::string& upload_id);

// The URLs the web profile's objects of upload_id should have under kCdn.
std::set<std::string> expected_urls(const std::string& upload_id, const std::string& source_format);
// The same under another base URL: base/images/<upload_id>/<name>.
std::set<std::string> expected_urls(const std::string& upload_id, const std::string& source_format,
                                    const std::string& base);

}  // namespace imgspool::it
