#ifndef PROMPTLINE_CTERMINAL_H
#define PROMPTLINE_CTERMINAL_H
#include <stddef.h>
/* SIGINT plumbing and small terminal helpers that are awkward or unsafe to write in Swift
   (a signal handler must be async-signal-safe C). */

/* Installs the SIGINT handler (sigaction, no SA_RESTART) once, creates the pipes, and makes the
   calling thread the "reader". Later calls only re-register the reader. 0 on success.
   Also installs a SIGWINCH handler (SA_RESTART) if SIGWINCH still has its default action. */
int ct_sigint_install(void);
/* Installs the handlers if needed without touching the reader. 0 on success. */
int ct_sigint_ensure_installed(void);
/* Makes the calling thread the reader until ct_sigint_pop_reader() restores the previous one.
   One level only: meant to bracket a single blocking read. A SIGINT handled on any other thread
   is forwarded to the reader with pthread_kill, so its blocking read() fails with EINTR. */
void ct_sigint_push_reader(void);
void ct_sigint_pop_reader(void);
/* Puts our SIGINT handler back if something replaced it (libedit's EL_SIGNAL handler, whose
   re-raise kill(0, SIGINT) would reach the whole process group). Cheap when nothing changed. */
void ct_sigint_reclaim(void);
/* Read end of the public self-pipe (one byte per SIGINT), or -1 before install. */
int ct_sigint_fd(void);

/* Waiting for input without losing a Ctrl-C. EINTR alone is racy: a SIGINT handled while the
   reader is between two read() calls interrupts nothing. The handlers also write to a private
   "wake" pipe, which ct_wait_input polls next to the input fd. */
enum { CT_WAIT_ERROR = -1, CT_WAIT_READY = 1, CT_WAIT_INTERRUPTED = 2, CT_WAIT_RESIZED = 3 };
/* Forgets Ctrl-C / resizes that happened before now (call when a prompt starts). */
void ct_wait_reset(void);
/* Blocks until fd is readable (or at EOF/error), a SIGINT arrives, or the window is resized.
   Other signals (EINTR) are retried. An interrupt wins over readiness. */
int ct_wait_input(int fd);
/* Makes the next ct_wait_input report CT_WAIT_INTERRUPTED again (for a caller that got the
   interrupt somewhere it cannot act on it). */
void ct_wait_repost_interrupt(void);

int ct_isatty(int fd);
/* Columns of the terminal on fd (TIOCGWINSZ), or 0 when unknown. */
int ct_terminal_width(int fd);
/* Typing ahead while output is drawn: ct_echo_suspend turns the terminal's echo off on fd, so
   keys typed during a turn are not drawn over its spinner; they stay queued for the next prompt,
   which shows them. Returns 1 when it turned echo off, 0 when it was off, -1 for no terminal.
   ct_echo_resume turns it back on (call it only after ct_echo_suspend returned 1). */
int ct_echo_suspend(int fd);
void ct_echo_resume(int fd);
/* Writes all len bytes of buf to fd, retrying after EINTR and short writes: the one write loop
   of the project (terminal output, transcripts, line editor). Returns 0, or -1 with errno set. */
int ct_write_all(int fd, const void *buf, size_t len);
/* Writes ESC[?2004h (on) or ESC[?2004l (off) to fd. */
void ct_bracketed_paste(int fd, int on);

#endif
