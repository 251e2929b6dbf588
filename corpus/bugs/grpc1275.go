package main

// grpc#1275 (channel): a test closes a stream while a goroutine reads from it,
// and waits on donec for the reader to finish. The reader is blocked receiving
// from the stream's receive buffer; CloseStream should have put a message
// there to wake it, and did not. Both goroutines block for good. The fix made
// CloseStream send that message.
func init() { register("grpc1275", "channel", grpc1275) }

type g1275Stream struct{ recv chan []byte }

func grpc1275() {
	s := &g1275Stream{recv: make(chan []byte)}
	donec := make(chan struct{})
	go func() {
		defer close(donec)
		_ = s.Read()
	}()
	s.CloseStream()
	<-donec // want: stuck
}

func (s *g1275Stream) Read() []byte {
	return <-s.recv // want: stuck
}

// CloseStream forgets to tell the reader: that is the bug.
func (s *g1275Stream) CloseStream() {}
