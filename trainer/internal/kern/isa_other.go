//go:build !amd64 || purego

package kern

// ISAs lists the kernel paths this machine can run: only the portable one
// without assembly.
func ISAs() []string { return []string{"go"} }

// UseISA does nothing without assembly.
func UseISA(string) (restore func()) { return func() {} }
