// Reads one sample's value out of an exposition text, for assertions.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

namespace imgspool::testing {

// `series` is the sample name with its labels as rendered: name{a="x"}; NaN when absent.
inline double sample_value(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ') {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return std::nan("");
}

}  // namespace imgspool::testing
