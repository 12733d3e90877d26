package e2e

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a child if the test binary dies
// without running its cleanups (a timeout panic, SIGKILL).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
