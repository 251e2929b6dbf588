package main

import "errors"

// cockroach#35073 (channel): the outbox of a distributed flow could fail while
// starting and return without closing the RowChannel it feeds; the consumer,
// ranging over that channel, waits for rows that never come. The fix closed
// the channel on every path out of the producer.
func init() { register("cockroach35073", "channel", cockroach35073) }

func cockroach35073() {
	rows := make(chan int)
	go c35073Consume(rows)
	go func() { _ = c35073Outbox(rows) }()
}

func c35073Outbox(rows chan<- int) error {
	if err := c35073Start(); err != nil {
		return err // the bug: rows is not closed on this path
	}
	defer close(rows)
	for i := range 3 {
		rows <- i
	}
	return nil
}

func c35073Start() error { return errors.New("outbox: connection refused") }

func c35073Consume(rows <-chan int) {
	sum := 0
	for r := range rows { // want: stuck
		sum += r
	}
	_ = sum
}
