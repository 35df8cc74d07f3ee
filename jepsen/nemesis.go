package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fault is one injected fault as the history records it: what it is, and
// the nodes it may cut off from the leader. The revocation checker excuses
// stale validations on those nodes while it lasts. apply injects it; the
// nemesis records the fault first, so its window starts before its effects.
type fault struct {
	desc  string
	nodes []string
	apply func() error
}

// nemesis plans one fault of its kind. The testbed's healAll ends every kind.
type nemesis func(ctx context.Context, tb *testbed, client *apiClient) fault

// nemeses maps --nemesis names to their faults.
var nemeses = map[string]nemesis{
	"partition":   partitionFault,
	"kill":        killFault,
	"pause":       pauseFault,
	"clock":       clockFault,
	"netem":       netemFault,
	"restart-all": restartAllFault,
}

// nemesisNames returns the valid --nemesis names, sorted.
func nemesisNames() []string {
	names := make([]string, 0, len(nemeses))
	for n := range nemeses {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// target picks the leader or a random node, half the time each. A fault on
// the leader disturbs every node, so all of them are affected.
func target(ctx context.Context, tb *testbed, client *apiClient) (name string, affected []string) {
	all := nodeNames(tb)
	if leader := tb.leader(ctx, client); leader != "" && rand.IntN(2) == 0 {
		return leader, all
	}
	name = all[rand.IntN(len(all))]
	if name == tb.leader(ctx, client) {
		return name, all
	}
	return name, []string{name}
}

func nodeNames(tb *testbed) []string {
	names := make([]string, len(tb.nodes))
	for i, n := range tb.nodes {
		names[i] = n.name
	}
	return names
}

// partitionFault cuts the network in one of five ways, chosen at random:
// the leader alone, a follower alone, a random node alone (the minority), a
// bridge, or one way. In a bridge, two nodes cannot talk but both reach the
// third. One way, the leader receives from no node while every node still
// receives from it.
func partitionFault(ctx context.Context, tb *testbed, client *apiClient) fault {
	all := nodeNames(tb)
	leader := tb.leader(ctx, client)
	if leader == "" {
		leader = all[rand.IntN(len(all))]
	}
	others := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == leader })
	isolate := func(kind, n string) fault {
		affected := []string{n}
		if n == leader {
			affected = all
		}
		return fault{desc: fmt.Sprintf("partition %s: %s alone", kind, n), nodes: affected, apply: func() error {
			for _, peer := range all {
				if peer != n {
					if err := tb.net.Cut(n, peer); err != nil {
						return err
					}
				}
			}
			return nil
		}}
	}

	switch rand.IntN(5) {
	case 0:
		return isolate("leader", leader)
	case 1:
		return isolate("follower", others[rand.IntN(len(others))])
	case 2:
		return isolate("minority", all[rand.IntN(len(all))])
	case 3:
		middle := all[rand.IntN(len(all))]
		ends := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == middle })
		return fault{desc: fmt.Sprintf("partition bridge: %s and %s apart, %s reaches both", ends[0], ends[1], middle), nodes: all,
			apply: func() error { return tb.net.Cut(ends[0], ends[1]) }}
	default:
		return fault{desc: fmt.Sprintf("partition one-way: %s receives from no node, every node receives from it", leader), nodes: all,
			apply: func() error {
				for _, n := range others {
					if err := tb.net.Drop(n, leader); err != nil {
						return err
					}
				}
				return nil
			}}
	}
}

// killFault sends SIGKILL to the leader or a random node; healing starts it
// again.
func killFault(ctx context.Context, tb *testbed, client *apiClient) fault {
	name, affected := target(ctx, tb, client)
	return fault{desc: "kill " + name, nodes: affected, apply: func() error {
		if !tb.node(name).kill() {
			return fmt.Errorf("kill %s: not running", name)
		}
		return nil
	}}
}

// pauseFault stops the leader or a random node with SIGSTOP, for far longer
// than an election timeout; healing resumes it.
func pauseFault(ctx context.Context, tb *testbed, client *apiClient) fault {
	name, affected := target(ctx, tb, client)
	return fault{desc: "pause " + name, nodes: affected, apply: func() error {
		if !tb.node(name).signal(syscall.SIGSTOP) {
			return fmt.Errorf("pause %s: not running", name)
		}
		return nil
	}}
}

// clockFault moves one node's clock by up to a minute either way. No node
// is excused: validating a revocation does not depend on the clock.
func clockFault(ctx context.Context, tb *testbed, client *apiClient) fault {
	name, _ := target(ctx, tb, client)
	offset := time.Duration(2+rand.IntN(58)) * time.Second
	if rand.IntN(2) == 0 {
		offset = -offset
	}
	return fault{desc: fmt.Sprintf("clock %s %+ds", name, int(offset.Seconds())),
		apply: func() error { return tb.node(name).setClockOffset(offset) }}
}

// netemFault slows and thins every node's traffic: 50 ms ± 20 ms of delay
// where the kernel has netem, and 10% loss.
func netemFault(_ context.Context, tb *testbed, _ *apiClient) fault {
	all := nodeNames(tb)
	delay := "delay 50ms±20ms, "
	if !tb.netem {
		delay = "no delay (this kernel has no netem), "
	}
	return fault{desc: "netem: " + delay + "10% loss on every node", nodes: all, apply: func() error {
		for _, n := range all {
			if tb.netem {
				if err := tb.net.Delay(n, 50, 20); err != nil {
					return err
				}
			}
			if err := tb.net.Loss(n, 10); err != nil {
				return err
			}
		}
		return nil
	}}
}

// restartAllFault kills every node at once and starts them all again a
// second later: a power cut of the whole cluster.
func restartAllFault(_ context.Context, tb *testbed, _ *apiClient) fault {
	return fault{desc: "restart-all: every node killed and started again", nodes: nodeNames(tb), apply: func() error {
		var wg sync.WaitGroup
		for _, n := range tb.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.kill()
			}()
		}
		wg.Wait()
		time.Sleep(time.Second)
		var errs []error
		for _, n := range tb.nodes {
			errs = append(errs, tb.start(n))
		}
		return errors.Join(errs...)
	}}
}

// runNemesis injects faults from names in turn until ctx ends: a quiet
// interval, then a fault for the fault duration, then healing. Each fault
// is one nemesis operation in the history.
func runNemesis(ctx context.Context, cfg *testConfig, tb *testbed, rec *recorder, log func(string, ...any)) error {
	if len(cfg.nemeses) == 0 {
		return nil
	}
	client := newAPIClient(4, time.Second)
	defer client.close()
	deadline, _ := ctx.Deadline()
	for i := 0; ; i++ {
		if sleep(ctx, cfg.faultInterval) != nil {
			return nil
		}
		if !deadline.IsZero() && time.Until(deadline) < cfg.faultDuration {
			return nil
		}
		name := cfg.nemeses[i%len(cfg.nemeses)]
		f := nemeses[name](ctx, tb, client)
		inv := rec.invoke(Event{Process: nemesisProcess, F: opNemesis, Fault: f.desc, Nodes: f.nodes})
		log("fault: %s (nodes excused: %s)", f.desc, strings.Join(orDash(f.nodes), ","))
		if err := f.apply(); err != nil {
			tb.healAll()
			rec.complete(inv, typeOK, func(e *Event) { e.Fault, e.Nodes = f.desc, f.nodes })
			return fmt.Errorf("nemesis %s: %w", name, err)
		}

		waitErr := sleep(ctx, cfg.faultDuration)
		healErr := tb.healAll()
		rec.complete(inv, typeOK, func(e *Event) { e.Fault, e.Nodes = f.desc, f.nodes })
		log("healed: %s", f.desc)
		if healErr != nil {
			return fmt.Errorf("heal after %s: %w", f.desc, healErr)
		}
		if waitErr != nil {
			return nil
		}
	}
}

func orDash(s []string) []string {
	if len(s) == 0 {
		return []string{"-"}
	}
	return s
}
