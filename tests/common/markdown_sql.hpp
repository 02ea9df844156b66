// The ```sql blocks of a Markdown file, so tests run exactly the queries the docs show.
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace imgspool::test_support {

inline std::vector<std::string> markdown_sql_blocks(const std::string& markdown_path) {
    std::ifstream in(markdown_path);
    std::vector<std::string> queries;
    std::string line, block;
    bool inside = false;
    while (std::getline(in, line)) {
        if (!inside && line == "```sql") {
            inside = true;
            block.clear();
        } else if (inside && line == "```") {
            inside = false;
            queries.push_back(block);
        } else if (inside) {
            block += line + "\n";
        }
    }
    return queries;
}

}  // namespace imgspool::test_support
