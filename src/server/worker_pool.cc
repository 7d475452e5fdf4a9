#include "server/worker_pool.h"

#include <spdlog/spdlog.h>

#include <iterator>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace backout::server {

OnDemandThreadPool::OnDemandThreadPool(Options options) : options_(options) {
  if (options_.max_threads == 0 || options_.max_threads < options_.min_threads) {
    throw std::invalid_argument(
        fmt::format("invalid thread pool size: max_threads {} must be at least 1 and at least "
                    "min_threads {}",
                    options_.max_threads, options_.min_threads));
  }
  try {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < options_.min_threads; ++i) StartThread();
  } catch (...) {
    // No destructor runs after a constructor throws, so the threads already started are joined
    // here.
    shutdown();
    throw;
  }
}

OnDemandThreadPool::~OnDemandThreadPool() { shutdown(); }

void OnDemandThreadPool::StartThread() {
  running_.emplace_back();
  const auto self = std::prev(running_.end());
  try {
    // The new thread locks mutex_ before it reads `self`, so the assignment happens first.
    *self = std::thread([this, self] { Work(self); });
  } catch (...) {
    running_.erase(self);
    throw;
  }
  ++started_;
}

void OnDemandThreadPool::enqueue(std::function<void()> task) {
  ThreadList exited;
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
    // A task already queued is taken by an idle thread that has not woken yet, so only a queue
    // longer than the idle threads needs a new one.
    if (!shutting_down_ && tasks_.size() > idle_ &&
        running_.size() - leaving_ < options_.max_threads) {
      try {
        StartThread();
      } catch (const std::system_error& error) {
        // NOTE: the task waits for a running thread to finish its task, or, when none runs
        // (min_threads 0), for the next enqueue() to start one.
        spdlog::warn("component=http event=worker_start_failed threads={} queued={} error=\"{}\"",
                     running_.size(), tasks_.size(), error.what());
      }
    }
    exited.swap(exited_);
  }
  task_ready_.notify_one();
  Join(exited);
}

void OnDemandThreadPool::shutdown() {
  ThreadList threads;
  {
    std::unique_lock lock(mutex_);
    if (shut_down_) return;
    shutting_down_ = true;
    task_ready_.notify_all();
    thread_exited_.wait(lock, [&] { return running_.empty(); });
    threads.swap(exited_);
    shut_down_ = true;
  }
  Join(threads);
}

size_t OnDemandThreadPool::thread_count() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

size_t OnDemandThreadPool::idle_thread_count() const {
  std::lock_guard lock(mutex_);
  return idle_;
}

size_t OnDemandThreadPool::threads_started() const {
  std::lock_guard lock(mutex_);
  return started_;
}

void OnDemandThreadPool::Work(ThreadList::iterator self) {
  std::unique_lock lock(mutex_);
  bool leaving = false;
  while (true) {
    ++idle_;
    task_ready_.wait_for(lock, options_.idle_timeout,
                         [&] { return !tasks_.empty() || shutting_down_; });
    --idle_;

    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      // The task's captures are destroyed outside the lock too.
      task = nullptr;
      lock.lock();
      continue;
    }
    if (shutting_down_) break;
    // The wait timed out with nothing queued. A thread stays in running_ until its last step
    // below, with the lock released in between, so threads already leaving are not counted:
    // otherwise two threads that time out together could both leave a pool at its minimum.
    if (running_.size() - leaving_ > options_.min_threads) {
      leaving = true;
      ++leaving_;
      break;
    }
  }

  // An exited thread keeps the top of its stack resident until it is joined (8 to 20 KiB with
  // glibc 2.36). So this thread joins the threads that exited before it, and only the last one
  // waits for the next enqueue() or shutdown(). A thread is in exited_ only after its last use
  // of mutex_ below, so the join cannot deadlock.
  ThreadList earlier;
  earlier.swap(exited_);
  lock.unlock();
  Join(earlier);
  lock.lock();
  if (leaving) --leaving_;
  exited_.splice(exited_.end(), running_, self);
  thread_exited_.notify_all();
}

void OnDemandThreadPool::Join(ThreadList& threads) {
  for (std::thread& thread : threads) thread.join();
}

}  // namespace backout::server
