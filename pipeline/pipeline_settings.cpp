#include "pipeline/pipeline_settings.hpp"

namespace imgspool {

SwappableSettings::SwappableSettings(PipelineSettings settings, std::shared_ptr<ObjectStore> store)
    : settings_(std::make_shared<const PipelineSettings>(std::move(settings))),
      store_(std::move(store)) {}

std::shared_ptr<const PipelineSettings> SwappableSettings::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

std::shared_ptr<ObjectStore> SwappableSettings::store() const {
    std::lock_guard lock(mutex_);
    return store_;
}

void SwappableSettings::set_settings(std::shared_ptr<const PipelineSettings> settings) {
    std::lock_guard lock(mutex_);
    // The old snapshot goes out with the argument, after the lock; jobs holding it keep it.
    settings_.swap(settings);
}

void SwappableSettings::set_store(std::shared_ptr<ObjectStore> store) {
    std::lock_guard lock(mutex_);
    store_.swap(store);
}

}  // namespace imgspool
