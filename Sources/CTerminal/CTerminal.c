#include "CTerminal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* 0 = no reader. glibc's pthread_t is an unsigned long and never 0 for a live thread. */
static _Atomic(pthread_t) reader_thread = (pthread_t)0;
static pthread_t saved_reader = (pthread_t)0;      /* push/pop: only touched by the reader itself */
static atomic_int forwarded_pending = 0;           /* a pthread_kill'ed copy is on its way */
static atomic_ulong sigint_count = 0;
static int pipe_fds[2] = {-1, -1};
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed = 0;

/* Runs on whatever thread the kernel picked (any thread not blocking SIGINT). Only
   async-signal-safe calls: atomics, write, pthread_kill, pthread_self. */
static void on_sigint(int signo) {
    int saved_errno = errno;
    pthread_t self = pthread_self();
    pthread_t reader = atomic_load(&reader_thread);
    int on_reader = reader != (pthread_t)0 && pthread_equal(self, reader);

    /* The copy we forwarded ourselves: it exists only to interrupt the reader's read(). */
    if (on_reader && atomic_exchange(&forwarded_pending, 0)) { errno = saved_errno; return; }

    atomic_fetch_add(&sigint_count, 1);
    if (pipe_fds[1] >= 0) {
        char byte = 'I';
        (void)!write(pipe_fds[1], &byte, 1);   /* non-blocking: a full pipe just drops the byte */
    }
    /* The reader is blocked in read() (el_gets): it only gets EINTR if the signal is handled on
       its own thread, so hand it over. */
    if (reader != (pthread_t)0 && !on_reader) {
        atomic_store(&forwarded_pending, 1);
        if (pthread_kill(reader, signo) != 0) atomic_store(&forwarded_pending, 0);
    }
    errno = saved_errno;
}

static int install_locked(void) {
    if (installed) return 0;
    if (pipe(pipe_fds) != 0) { pipe_fds[0] = pipe_fds[1] = -1; return -1; }
    for (int i = 0; i < 2; i++) fcntl(pipe_fds[i], F_SETFD, FD_CLOEXEC);
    fcntl(pipe_fds[1], F_SETFL, fcntl(pipe_fds[1], F_GETFL) | O_NONBLOCK);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a blocking read must fail with EINTR */
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;

    /* Make sure this thread can receive it (a DispatchSource may have blocked it). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    installed = 1;
    return 0;
}

int ct_sigint_ensure_installed(void) {
    pthread_mutex_lock(&install_lock);
    int rc = install_locked();
    pthread_mutex_unlock(&install_lock);
    return rc;
}

int ct_sigint_install(void) {
    int rc = ct_sigint_ensure_installed();
    if (rc == 0) atomic_store(&reader_thread, pthread_self());
    return rc;
}

void ct_sigint_push_reader(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    saved_reader = atomic_exchange(&reader_thread, pthread_self());
}

void ct_sigint_pop_reader(void) {
    atomic_store(&reader_thread, saved_reader);
    saved_reader = (pthread_t)0;
}

int ct_sigint_fd(void) { return pipe_fds[0]; }
unsigned long ct_sigint_count(void) { return atomic_load(&sigint_count); }
void ct_sigint_reset_count(void) { atomic_store(&sigint_count, 0); }

int ct_isatty(int fd) { return isatty(fd); }

int ct_terminal_width(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 0;
}

void ct_bracketed_paste(int fd, int on) {
    const char *seq = on ? "\033[?2004h" : "\033[?2004l";
    size_t len = strlen(seq), off = 0;
    while (off < len) {
        ssize_t n = write(fd, seq + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += (size_t)n;
    }
}
