#ifndef PROMPTLINE_CLIBEDIT_SHIM_H
#define PROMPTLINE_CLIBEDIT_SHIM_H
/* libedit's el_set / el_get / history are C-variadic, which Swift cannot call: each use gets a
   fixed-signature inline wrapper here. */
#include <stdio.h>
#include <histedit.h>
#endif
