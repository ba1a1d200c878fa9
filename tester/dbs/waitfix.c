/* waitfix: timed waits that end under libfaketime, and a safe start for programs on jemalloc.
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
#include <string.h>
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

/* libfaketime initialises itself on its first clock call, and that allocates (dlsym). A
 * program whose malloc reads the clock while holding its own lock -- jemalloc, as in
 * redis-server, initialising from another library's constructor -- then deadlocks in
 * libfaketime's initialisation, or libfaketime gives up on the recursion and the process dies.
 * So until this library's constructor has initialised libfaketime (at a moment nothing holds
 * an allocator lock), and in a clock call nested inside libfaketime, the kernel's clock is
 * read directly: only code that runs before main() sees the real time. */
static int (*next_clock_gettime)(clockid_t, struct timespec *);
static int ready;
static __thread int in_clock;

int clock_gettime(clockid_t clock, struct timespec *tp) {
  if (!ready || in_clock || !next_clock_gettime)
    return (int)syscall(SYS_clock_gettime, clock, tp);
  in_clock = 1;
  int r = next_clock_gettime(clock, tp);
  in_clock = 0;
  return r;
}

/* jemalloc also creates a condition variable while initialising; libfaketime wraps
 * pthread_cond_init. A default one is all zeroes (PTHREAD_COND_INITIALIZER). */
int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr) {
  static int (*next)(pthread_cond_t *, const pthread_condattr_t *);
  if (!ready && !attr) {
    memset(cond, 0, sizeof *cond);
    return 0;
  }
  if (!next) next = (int (*)(pthread_cond_t *, const pthread_condattr_t *))
                 dlvsym(RTLD_NEXT, "pthread_cond_init", "GLIBC_2.3.2");
  return next ? next(cond, attr) : ENOSYS;
}

__attribute__((constructor)) static void start_libfaketime(void) {
  struct timespec t;
  next_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
  if (next_clock_gettime) next_clock_gettime(CLOCK_REALTIME, &t);
  ready = 1;
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
