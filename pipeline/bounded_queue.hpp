// A bounded multi-producer multi-consumer queue: push blocks while full (back-pressure),
// pop blocks while empty, close() wakes everybody and makes pop drain what is left.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace imgspool {

template <class T>
class BoundedQueue {
  public:
    explicit BoundedQueue(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

    // false if the queue was closed (the item is not queued).
    bool push(T item) {
        std::unique_lock lock(mutex_);
        not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
        if (closed_) return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    // Blocks until fewer than `limit` items are queued; false once the queue is closed.
    bool wait_below(std::size_t limit) {
        std::unique_lock lock(mutex_);
        not_full_.wait(lock, [&] { return closed_ || items_.size() < limit; });
        return !closed_;
    }

    // Never blocks: false if the queue is full or closed (the item is not queued).
    bool try_push(T& item) {
        std::lock_guard lock(mutex_);
        if (closed_ || items_.size() >= capacity_) return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    // nullopt once closed and empty. With drain=false, nullopt as soon as closed.
    std::optional<T> pop() {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
        if (items_.empty() || (closed_ && !drain_)) return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_all();  // push and wait_below wait on it, for different sizes
        return item;
    }

    // drain=true: consumers still get what is queued; false: they stop at once and the
    // queued items are left for take_remaining().
    void close(bool drain) {
        std::lock_guard lock(mutex_);
        closed_ = true;
        drain_ = drain;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    std::deque<T> take_remaining() {
        std::lock_guard lock(mutex_);
        return std::exchange(items_, {});
    }

    std::size_t capacity() const { return capacity_; }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }

  private:
    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable not_full_;
    std::condition_variable not_empty_;
    std::deque<T> items_;
    bool closed_ = false;
    bool drain_ = true;
};

}  // namespace imgspool
