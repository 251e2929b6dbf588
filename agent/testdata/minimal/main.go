// Command minimal embeds the agent and nothing else: the smallest program a
// user can build with it, whose size the agent's tests bound.
package main

import (
	"log"
	"os"
	"os/signal"

	"github.com/inspectd/inspectd/agent"
)

func main() {
	a, err := agent.Listen(agent.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	log.Printf("inspect with: inspect-cli top %s", a.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}
