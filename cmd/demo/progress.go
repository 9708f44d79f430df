package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress prints one line per stage: what happened, what it waits for and
// how long that took. On a terminal the line carries a spinner and a
// counter while it waits; elsewhere (a file, a pipe, a test) it is written
// once, when the stage ends, so logs stay clean.
type progress struct {
	w     io.Writer
	tty   bool
	total int
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// stageLine is the line of one stage.
type stageLine struct {
	p      *progress
	short  string // the number and title: the spinner's line stays short enough not to wrap
	prefix string
	start  time.Time
	spin   int
}

// begin starts the line of stage n, timed from start.
func (p *progress) begin(n int, title, did, waitFor string, start time.Time) *stageLine {
	short := fmt.Sprintf("[%d/%d] %-16s", n, p.total, title)
	prefix := short
	if did != "" {
		prefix += " " + did + ";"
	}
	prefix += " waiting for " + waitFor
	return &stageLine{p: p, short: short, prefix: prefix, start: start}
}

var spinner = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

// tick redraws the line with a spinner, the time so far and a counter; only
// on a terminal.
func (l *stageLine) tick(counter string) {
	if !l.p.tty {
		return
	}
	l.spin++
	fmt.Fprintf(l.p.w, "\r\033[K%s %c %.1fs  %s", l.short, spinner[l.spin%len(spinner)], time.Since(l.start).Seconds(), truncate(counter, 70))
}

// done ends the line with the time the stage took.
func (l *stageLine) done(note string) time.Duration {
	took := time.Since(l.start)
	if l.p.tty {
		fmt.Fprint(l.p.w, "\r\033[K")
	}
	if note != "" {
		note = " (" + note + ")"
	}
	fmt.Fprintf(l.p.w, "%s ... done in %s%s\n", l.prefix, took.Round(10*time.Millisecond), note)
	return took
}

// fail ends the line with the failure.
func (l *stageLine) fail() {
	if l.p.tty {
		fmt.Fprint(l.p.w, "\r\033[K")
	}
	fmt.Fprintf(l.p.w, "%s ... FAILED after %s\n", l.prefix, time.Since(l.start).Round(10*time.Millisecond))
}
