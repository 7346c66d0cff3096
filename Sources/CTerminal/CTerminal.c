#include "CTerminal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* 0 = no reader. glibc's pthread_t is an unsigned long and never 0 for a live thread. */
static _Atomic(pthread_t) reader_thread = (pthread_t)0;
static pthread_t saved_reader = (pthread_t)0;      /* push/pop: only touched by the reader itself */
static _Atomic(pthread_t) forward_target = (pthread_t)0;   /* thread a forwarded copy is on its way to */
static int public_pipe[2] = {-1, -1};              /* for the application (cancel work in flight) */
static int wake_pipe[2] = {-1, -1};                /* for ct_wait_input only */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed = 0;

static void put_byte(int fd, char byte) {
    if (fd >= 0) (void)!write(fd, &byte, 1);   /* non-blocking: a full pipe just drops it */
}

/* Runs on whatever thread the kernel picked (any thread not blocking SIGINT). Only
   async-signal-safe calls: atomics, write, pthread_kill, pthread_self. */
static void on_sigint(int signo) {
    int saved_errno = errno;
    pthread_t self = pthread_self();
    pthread_t reader = atomic_load(&reader_thread);
    int on_reader = reader != (pthread_t)0 && pthread_equal(self, reader);

    /* The copy we forwarded ourselves: it exists only to interrupt a blocking read(). Matched by
       target, not by "is the reader": the reader may have finished its read and moved on. */
    pthread_t target = atomic_load(&forward_target);
    if (target != (pthread_t)0 && pthread_equal(self, target) &&
        atomic_compare_exchange_strong(&forward_target, &target, (pthread_t)0)) {
        errno = saved_errno;
        return;
    }

    put_byte(public_pipe[1], 'I');
    put_byte(wake_pipe[1], 'I');
    /* A blocking read() only fails with EINTR if the signal is handled on its own thread. */
    if (reader != (pthread_t)0 && !on_reader) {
        atomic_store(&forward_target, reader);
        if (pthread_kill(reader, signo) != 0) atomic_store(&forward_target, (pthread_t)0);
    }
    errno = saved_errno;
}

static void on_sigwinch(int signo) {
    (void)signo;
    int saved_errno = errno;
    put_byte(wake_pipe[1], 'W');
    errno = saved_errno;
}

static int make_pipe(int fds[2]) {
    if (pipe(fds) != 0) { fds[0] = fds[1] = -1; return -1; }
    for (int i = 0; i < 2; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    return 0;
}

static int install_locked(void) {
    if (installed) return 0;
    if (make_pipe(public_pipe) != 0 || make_pipe(wake_pipe) != 0) return -1;
    fcntl(wake_pipe[0], F_SETFL, fcntl(wake_pipe[0], F_GETFL) | O_NONBLOCK);   /* drained, never waited on */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigint;
    sa.sa_flags = 0;   /* no SA_RESTART: a blocking read must fail with EINTR */
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;

    /* Resizes wake ct_wait_input. Only if nobody else handles SIGWINCH; SA_RESTART so other
       threads' syscalls don't see EINTR (poll is never restarted, so the reader still wakes). */
    struct sigaction old;
    if (sigaction(SIGWINCH, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        sa.sa_handler = on_sigwinch;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGWINCH, &sa, NULL);
    }

    /* Make sure this thread can receive SIGINT (a DispatchSource may have blocked it). */
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

void ct_sigint_reclaim(void) {
    struct sigaction cur;
    if (!installed || sigaction(SIGINT, NULL, &cur) != 0 || cur.sa_handler == on_sigint) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
}

int ct_sigint_fd(void) { return public_pipe[0]; }

/* Empties the wake pipe; returns what it held: 'I' if any interrupt, else 'W' if any resize. */
static char drain_wake(void) {
    char buf[64], seen = 0;
    ssize_t n;
    if (wake_pipe[0] < 0) return 0;
    while ((n = read(wake_pipe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == 'I' || (buf[i] == 'W' && seen != 'I')) seen = buf[i];
    return seen;
}

void ct_wait_reset(void) { (void)drain_wake(); }
void ct_wait_repost_interrupt(void) { put_byte(wake_pipe[1], 'I'); }

int ct_wait_input(int fd) {
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake_pipe[0], .events = POLLIN}};
        int n = poll(p, wake_pipe[0] >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;   /* the handler wrote to the wake pipe first */
            return CT_WAIT_ERROR;
        }
        if (wake_pipe[0] >= 0 && (p[1].revents & POLLIN)) {
            char seen = drain_wake();
            if (seen == 'I') return CT_WAIT_INTERRUPTED;
            if (seen == 'W') return CT_WAIT_RESIZED;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) return CT_WAIT_READY;
    }
}

int ct_isatty(int fd) { return isatty(fd); }

int ct_terminal_width(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 0;
}

int ct_echo_suspend(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    if (!(t.c_lflag & ECHO)) return 0;
    t.c_lflag &= ~(tcflag_t)ECHO;
    return tcsetattr(fd, TCSANOW, &t) == 0 ? 1 : -1;   /* TCSANOW: what was typed stays queued */
}

void ct_echo_resume(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return;
    t.c_lflag |= ECHO;
    (void)tcsetattr(fd, TCSANOW, &t);
}

int ct_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) { errno = EIO; return -1; }
        off += (size_t)n;
    }
    return 0;
}

void ct_bracketed_paste(int fd, int on) {
    const char *seq = on ? "\033[?2004h" : "\033[?2004l";
    (void)ct_write_all(fd, seq, strlen(seq));
}
