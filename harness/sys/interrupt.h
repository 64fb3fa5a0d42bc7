/* SIGINT/SIGTERM during training: the handler only records the signal; the training loop stops
 * after the current step, the run is written as incomplete, and the process exits 128 + signal
 * (130 for Ctrl-C, 143 for SIGTERM). */
#ifndef AMPBENCH_INTERRUPT_H
#define AMPBENCH_INTERRUPT_H

/* Installs the handlers (idempotent). */
void interrupt_install(void);
/* The signal received since install, or 0. */
int interrupt_signal(void);

#endif
