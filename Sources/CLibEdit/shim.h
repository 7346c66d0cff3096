#ifndef PROMPTLINE_CLIBEDIT_SHIM_H
#define PROMPTLINE_CLIBEDIT_SHIM_H
/* libedit's el_set / el_get / history are C-variadic, which Swift cannot call: each use gets a
   fixed-signature inline wrapper here. <histedit.h> explicitly: <readline/readline.h> may resolve
   to GNU readline's header while we link -ledit. */
#include <stdio.h>
#include <histedit.h>

typedef char *(*le_prompt_fn)(EditLine *);
typedef unsigned char (*le_command_fn)(EditLine *, int);

/* el_init with the process's stdin/stdout/stderr: Swift 6 rejects touching the `stdin` global
   ("not concurrency-safe"), so the FILE pointers are taken here. */
static inline EditLine *le_init(const char *prog) { return el_init(prog, stdin, stdout, stderr); }

/* The prompt callback; text between two `literal` characters (e.g. '\1') is printed as-is and
   takes no width, which keeps ANSI colour sequences from confusing cursor arithmetic. */
static inline int le_set_prompt(EditLine *el, le_prompt_fn fn, char literal) {
    return el_set(el, EL_PROMPT_ESC, fn, literal);
}
static inline int le_set_editor(EditLine *el, const char *mode) { return el_set(el, EL_EDITOR, mode); }
/* 1: libedit restores the tty on SIGINT/SIGTSTP/SIGTERM/… during el_gets, then re-raises. */
static inline int le_set_signal(EditLine *el, int on) { return el_set(el, EL_SIGNAL, on); }
static inline int le_set_hist(EditLine *el, History *h) { return el_set(el, EL_HIST, history, h); }
static inline int le_add_function(EditLine *el, const char *name, const char *help, le_command_fn fn) {
    return el_set(el, EL_ADDFN, name, help, fn);
}
/* `bind key command` in the current (vi: insert) keymap, or with `alternate` in vi's command keymap. */
static inline int le_bind(EditLine *el, const char *key, const char *command, int alternate) {
    return alternate ? el_set(el, EL_BIND, "-a", key, command, NULL)
                     : el_set(el, EL_BIND, key, command, NULL);
}
/* Replaces libedit's read-a-character function (EL_GETCFN). */
static inline int le_set_getcfn(EditLine *el, el_rfunc_t fn) { return el_set(el, EL_GETCFN, fn); }
static inline int le_set_clientdata(EditLine *el, void *data) { return el_set(el, EL_CLIENTDATA, data); }
static inline void *le_get_clientdata(EditLine *el) {
    void *data = NULL;
    el_get(el, EL_CLIENTDATA, &data);
    return data;
}
/* Writes to the EditLine's output stream (from inside a bound command) and flushes. */
static inline void le_write_out(EditLine *el, const char *text) {
    FILE *fp = NULL;
    if (el_get(el, EL_GETFP, 1, &fp) != 0 || fp == NULL) return;
    fputs(text, fp);
    fflush(fp);
}

/* History. Each returns history()'s result: -1 on error; H_LOAD/H_SAVE give the entry count. */
static inline int le_history_setsize(History *h, int size) { HistEvent ev; return history(h, &ev, H_SETSIZE, size); }
static inline int le_history_setunique(History *h, int on) { HistEvent ev; return history(h, &ev, H_SETUNIQUE, on); }
static inline int le_history_enter(History *h, const char *line) { HistEvent ev; return history(h, &ev, H_ENTER, line); }
static inline int le_history_load(History *h, const char *path) { HistEvent ev; return history(h, &ev, H_LOAD, path); }
static inline int le_history_save(History *h, const char *path) { HistEvent ev; return history(h, &ev, H_SAVE, path); }

#endif
