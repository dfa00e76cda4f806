// Package benchcpu measures the CPU time the process has used, for
// benchmarks that report cores and CPU per row or request: on a shared
// machine CPU time says more than wall time does.
package benchcpu

import (
	"syscall"
	"time"
)

// Used returns the user and system CPU time the process has used so far,
// or 0 if the system cannot say.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
