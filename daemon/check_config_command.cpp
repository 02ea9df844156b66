// `imgspool check-config`: the effective configuration (secrets masked) and a store check.
#include <cstdio>

#include "daemon/commands.hpp"
#include "daemon/runtime.hpp"

namespace imgspool {

int check_config(Config config) {
    std::printf("%s", describe_config(config).c_str());
    auto store = make_store(config.store);
    if (!store) {
        std::fprintf(stderr, "imgspool: %s\n", store.error().message().c_str());
        return 1;
    }
    if (Status st = store.value()->check(); !st) {
        std::fprintf(stderr, "imgspool: store %s: %s\n", store.value()->describe().c_str(),
                     st.error().message().c_str());
        return 1;
    }
    std::fprintf(stderr, "imgspool: config OK; store %s reachable\n",
                 store.value()->describe().c_str());
    return 0;
}

}  // namespace imgspool
