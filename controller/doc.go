// Package controller holds the search strategies (random search, regularized
// evolution, REINFORCE) behind one interface over categorical choices.
package controller
