// Package search runs studies: the controller proposes candidates,
// successive halving promotes the best through longer trainings and
// several seeds (halving.go), worker goroutines train them as proxies, and
// the store keeps every decision so that a study resumes after any crash.
// Standings rank candidates by their means over seeds at the top rung;
// the proxy benchmark (panel.go) measures how far a proxy can be trusted.
package search
