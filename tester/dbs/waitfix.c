/* waitfix: timed waits that end under libfaketime.
 *
 * libfaketime (0.9.10, Debian 12) fakes CLOCK_MONOTONIC as well as CLOCK_REALTIME, and its
 * faked monotonic clock reads like the wall clock (about 1.8e9 s), but it does not wrap
 * sem_clockwait() or pthread_cond_clockwait(). CPython's timed lock acquire -- under
 * threading.Event.wait, Condition.wait, queue.get(timeout=...) -- computes an absolute deadline
 * on the faked monotonic clock and hands it to the kernel's real one: the wait would last
 * decades. Preloaded beside libfaketime, these wrappers turn the caller's deadline into the
 * time left on the faked clock and wait that long on the real clock, as libfaketime itself
 * does for sem_timedwait() and sleeps: a wait lasts what the caller asked for, measured when it
 * began, whatever the clock nemesis does meanwhile.
 *
 * Built on the node by faketime-run (cc -shared -fPIC -O2 -o waitfix.so waitfix.c -ldl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The real-clock deadline that leaves as much time as ``abstime`` leaves on the faked clock. */
static struct timespec real_deadline(clockid_t clock, const struct timespec *abstime) {
  struct timespec fake, real;
  clock_gettime(clock, &fake);                          /* libfaketime's clock */
  syscall(SYS_clock_gettime, clock, &real);             /* the kernel's, unfaked */
  long long left = (abstime->tv_sec - fake.tv_sec) * 1000000000LL
                   + (abstime->tv_nsec - fake.tv_nsec);
  if (left < 0) left = 0;
  long long at = real.tv_sec * 1000000000LL + real.tv_nsec + left;
  struct timespec out = {at / 1000000000LL, at % 1000000000LL};
  return out;
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
  static int (*next)(sem_t *, clockid_t, const struct timespec *);
  if (!next) next = (int (*)(sem_t *, clockid_t, const struct timespec *))dlsym(RTLD_NEXT, "sem_clockwait");
  if (!next) { errno = ENOSYS; return -1; }
  struct timespec d = real_deadline(clock, abstime);
  return next(sem, clock, &d);
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock,
                           const struct timespec *abstime) {
  static int (*next)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
  if (!next) next = (int (*)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *))
                 dlsym(RTLD_NEXT, "pthread_cond_clockwait");
  if (!next) return ENOSYS;
  struct timespec d = real_deadline(clock, abstime);
  return next(cond, mutex, clock, &d);
}
