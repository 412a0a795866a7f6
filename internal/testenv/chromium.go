package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Chromium returns the path of a Chromium (or Chrome) binary for browser
// tests: $EFFNAS_CHROMIUM, else ChromiumPath, else chromium,
// chromium-browser or google-chrome on $PATH. Without one it calls
// Missing: the test skips and says what to install, or fails in CI.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EFFNAS_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "EFFNAS_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat(ChromiumPath); err == nil {
		return ChromiumPath
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "no Chromium browser for the browser tests (apt-get install chromium, or set EFFNAS_CHROMIUM to a Chrome binary)")
	return ""
}
