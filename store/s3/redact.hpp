// Keeps secrets out of every text that leaves the S3 store (errors, log lines).
#pragma once

#include <string>

#include "store/s3/sigv4.hpp"

namespace imgspool::s3 {

// text with every occurrence of the secret access key and the session token replaced by
// "[redacted]".
std::string redact(std::string text, const Credentials& credentials);

}  // namespace imgspool::s3
