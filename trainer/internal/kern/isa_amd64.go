//go:build amd64 && !purego

package kern

import "golang.org/x/sys/cpu"

// ISAs lists the kernel paths this machine can run: "go" (portable),
// "avx2" (AVX2 and FMA) and "avx512" (AVX-512 where it helps, AVX2
// elsewhere).
func ISAs() []string {
	modes := []string{"go"}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		modes = append(modes, "avx2")
		if cpu.X86.HasAVX512F {
			modes = append(modes, "avx512")
		}
	}
	return modes
}

// UseISA makes the kernels take one of the paths ISAs lists until restore
// is called, so that tests check every path this machine has. It must not
// run while kernels do.
func UseISA(mode string) (restore func()) {
	a, b := useAsm, use512
	useAsm, use512 = mode != "go", mode == "avx512"
	return func() { useAsm, use512 = a, b }
}
