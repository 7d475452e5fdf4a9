#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace backout::server {

// A task queue for cpp-httplib (set through httplib::Server::new_task_queue) that starts its
// threads on demand. A task that arrives while no thread is idle starts a new thread, up to
// `max_threads`. A thread that stays idle for `idle_timeout` exits, unless only `min_threads`
// remain. Tasks run in arrival order, one per thread, as in httplib::ThreadPool; a task that
// arrives when all `max_threads` are busy waits in the queue.
class OnDemandThreadPool final : public httplib::TaskQueue {
 public:
  struct Options {
    size_t min_threads = 2;  // started by the constructor; never exit before shutdown()
    size_t max_threads = 64;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  };

  // Starts `min_threads` threads. Throws std::invalid_argument when max_threads is 0 or less
  // than min_threads, and std::system_error when a thread cannot be started.
  explicit OnDemandThreadPool(Options options);
  // Calls shutdown() unless it ran already.
  ~OnDemandThreadPool() override;
  OnDemandThreadPool(const OnDemandThreadPool&) = delete;
  OnDemandThreadPool& operator=(const OnDemandThreadPool&) = delete;

  // Queues `task` and starts a thread when no thread is idle and fewer than max_threads run.
  // When the thread cannot be started, the task waits for a running thread. A task queued after
  // shutdown() never runs, as with httplib::ThreadPool.
  void enqueue(std::function<void()> task) override;

  // Runs every task already queued, then joins every thread the pool started. Blocks until the
  // running tasks return.
  void shutdown() override;

  // The threads started and not yet exited.
  size_t thread_count() const;
  // The threads waiting for a task.
  size_t idle_thread_count() const;
  // The threads started since construction, including those that exited.
  size_t threads_started() const;

 private:
  using ThreadList = std::list<std::thread>;

  // Starts one thread; `mutex_` must be held. Throws std::system_error like std::thread.
  void StartThread();
  void Work(ThreadList::iterator self);
  // Joins the threads that exited on their idle timeout; `mutex_` must not be held.
  static void Join(ThreadList& threads);

  const Options options_;
  mutable std::mutex mutex_;
  std::condition_variable task_ready_;
  std::condition_variable thread_exited_;
  std::deque<std::function<void()>> tasks_;
  ThreadList running_;  // threads that have not finished Work()
  ThreadList exited_;   // threads that finished Work() and wait to be joined
  size_t idle_ = 0;     // threads waiting for a task
  size_t leaving_ = 0;  // threads in running_ that timed out and are about to exit
  size_t started_ = 0;
  bool shutting_down_ = false;
  bool shut_down_ = false;
};

}  // namespace backout::server
