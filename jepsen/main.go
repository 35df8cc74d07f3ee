// Command jepsen drives a Rotor node or cluster from the outside.
//
// The test subcommand is the fault harness. It runs a three-node cluster in
// network namespaces behind HAProxy and injects partitions, crashes, pauses
// and clock and network faults while clients record a history. Then it
// checks the history against Rotor's invariants. It needs root:
//
//	go run ./jepsen test --time-limit 60s --nemesis partition,kill,pause
//
// The load subcommand measures throughput, latency and revocation
// visibility:
//
//	go run ./jepsen load --target http://127.0.0.1:8080 --workload refresh --concurrency 1,8,32
//
// Run `go run ./jepsen COMMAND -h` for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: jepsen COMMAND [flags]

Commands:
  test      run a three-node cluster in network namespaces (needs root),
            inject faults while clients work, and check the history
  load      send a bounded load to a Rotor node or load balancer and report
            throughput, latency and revocation visibility
  failover  kill the leader of a deploy/local-cluster.sh cluster again and
            again, and report the time from each kill to the next successful
            refresh through the load balancer

Run 'jepsen COMMAND -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit status: 0 on
// success, 1 when the run failed and 2 for a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "load":
		_, err := runLoad(ctx, args[1:], stdout, stderr)
		return exitStatus(err, stderr)
	case "failover":
		return exitStatus(runFailover(ctx, args[1:], stdout, stderr), stderr)
	case "test":
		return exitStatus(runTest(ctx, args[1:], stdout, stderr), stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "jepsen: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// exitStatus prints err and maps it to an exit status. A flag error has
// already been printed by the flag package, together with the usage.
func exitStatus(err error, stderr io.Writer) int {
	var usageErr *usageError
	var silent *silentError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &silent):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		if !usageErr.printed {
			fmt.Fprintln(stderr, "jepsen:", err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "jepsen:", err)
		return 1
	}
}

// usageError is an invalid command line, as opposed to a failed run.
// printed is set when the flag package has already printed it.
type usageError struct {
	err     error
	printed bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
