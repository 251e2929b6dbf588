package main

import "context"

// cockroach#13197 (context): a SQL transaction started a goroutine, awaitDone,
// that waits for the transaction's context to be done and then rolls it back.
// The context was one whose cancel function was dropped on a path through
// begin: nothing will ever cancel it, and awaitDone waits for good. Cancelling
// the context when the transaction ends would end it.
func init() { register("cockroach13197", "context", cockroach13197) }

type c13197Tx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func cockroach13197() {
	tx := c13197Begin()
	_ = tx // committed; tx.cancel is never called
}

func c13197Begin() *c13197Tx {
	ctx, cancel := context.WithCancel(context.Background())
	tx := &c13197Tx{ctx: ctx, cancel: cancel}
	go tx.awaitDone()
	return tx
}

func (tx *c13197Tx) awaitDone() {
	<-tx.ctx.Done() // want: stuck
	// rollback
}
