// Package storetest is the conformance suite every store.Store
// implementation runs against its real database: storetest.Run.
package storetest
