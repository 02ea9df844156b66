// The fenced code blocks of a Markdown file, so tests run exactly the queries the docs show:
// ```sql blocks for the sqlite3 CLI, ```psql blocks for psql (docs/queries.md).
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace imgspool::test_support {

struct CodeBlock {
    std::string info;  // what follows the opening ``` ("sql", "psql", "sh", "")
    std::string text;  // the lines between the fences, each ending in "\n"
};

// Every fenced block, in document order.
inline std::vector<CodeBlock> markdown_code_blocks(const std::string& markdown_path) {
    std::ifstream in(markdown_path);
    std::vector<CodeBlock> blocks;
    std::string line;
    bool inside = false;
    while (std::getline(in, line)) {
        if (!inside && line.starts_with("```")) {
            inside = true;
            blocks.push_back({line.substr(3), ""});
        } else if (inside && line == "```") {
            inside = false;
        } else if (inside) {
            blocks.back().text += line + "\n";
        }
    }
    return blocks;
}

// The texts of the blocks whose info string is `info`, in document order.
inline std::vector<std::string> markdown_blocks(const std::string& markdown_path,
                                                const std::string& info) {
    std::vector<std::string> texts;
    for (auto& block : markdown_code_blocks(markdown_path)) {
        if (block.info == info) texts.push_back(std::move(block.text));
    }
    return texts;
}

inline std::vector<std::string> markdown_sql_blocks(const std::string& markdown_path) {
    return markdown_blocks(markdown_path, "sql");
}

}  // namespace imgspool::test_support
