// Package dashboard serves effnas's read-only web UI: the studies of a
// store, each study's progress, figures and trials, and comparisons, kept
// live while searches, grids and workers write to the store.
//
// Pages are html/template over server-rendered SVG; one small script
// (static/live.js) asks every Options.Poll (0.75 s by default) whether
// anything changed and, when it did, swaps in the changed parts of the page
// as the server rendered them. Every figure's data is also served as JSON
// under /api/, the same values the page draws. Nothing here writes: the
// handlers only call the store's read methods, and only GET (and HEAD)
// requests are answered.
package dashboard
