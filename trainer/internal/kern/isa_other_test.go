//go:build !amd64 || purego

package kern

func isaModes() []string { return []string{"go"} }

func setISA(string) (restore func()) { return func() {} }
