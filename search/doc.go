// Package search runs a baseline search: the controller proposes candidates,
// worker goroutines train them as proxies, and the store keeps everything so
// the job resumes after any crash.
package search
