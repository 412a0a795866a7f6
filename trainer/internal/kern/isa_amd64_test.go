//go:build amd64 && !purego

package kern

import "golang.org/x/sys/cpu"

// isaModes lists the kernel paths this machine can run.
func isaModes() []string {
	modes := []string{"go"}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		modes = append(modes, "avx2")
		if cpu.X86.HasAVX512F {
			modes = append(modes, "avx512")
		}
	}
	return modes
}

// setISA makes the kernels take one path until restore is called.
func setISA(mode string) (restore func()) {
	a, b := useAsm, use512
	useAsm, use512 = mode != "go", mode == "avx512"
	return func() { useAsm, use512 = a, b }
}
