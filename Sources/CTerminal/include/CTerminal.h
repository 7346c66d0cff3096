#ifndef PROMPTLINE_CTERMINAL_H
#define PROMPTLINE_CTERMINAL_H
/* SIGINT plumbing and small terminal helpers that are awkward or unsafe to write in Swift
   (a signal handler must be async-signal-safe C). */

/* Installs the SIGINT handler (sigaction, no SA_RESTART) once, creates the self-pipe, and makes
   the calling thread the "reader". Later calls only re-register the reader. 0 on success. */
int ct_sigint_install(void);
/* Installs the handler if needed without touching the reader. 0 on success. */
int ct_sigint_ensure_installed(void);
/* Makes the calling thread the reader until ct_sigint_pop_reader() restores the previous one.
   One level only: meant to bracket a single blocking read. */
void ct_sigint_push_reader(void);
void ct_sigint_pop_reader(void);
/* Read end of the self-pipe (one byte per SIGINT), or -1 before install. */
int ct_sigint_fd(void);
/* SIGINTs seen since install / the last reset. */
unsigned long ct_sigint_count(void);
void ct_sigint_reset_count(void);

int ct_isatty(int fd);
/* Columns of the terminal on fd (TIOCGWINSZ), or 0 when unknown. */
int ct_terminal_width(int fd);
/* Writes ESC[?2004h (on) or ESC[?2004l (off) to fd. */
void ct_bracketed_paste(int fd, int on);

#endif
