package netns

import (
	"bufio"
	"fmt"
	"net"
	"os"

	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a small program inside a
// namespace: "listen ADDR" answers every connection with "hello", and
// "dial ADDR" prints "ok" or "failed".
const helperEnv = "NETNS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	verb, addr, _ := strings.Cut(mode, " ")
	switch verb {
	case "listen":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			fmt.Fprintln(c, "hello")
			c.Close()
		}
	case "dial":
		if dial(addr) {
			fmt.Println("ok")
		} else {
			fmt.Println("failed")
		}
		return 0
	}
	return 2
}

func dial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "hello\n"
}

func TestDropAndHeal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if err := Tools(); err != nil {
		t.Skip(err)
	}
	n, err := Create(fmt.Sprintf("nt%x", os.Getpid()&0xffff), []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Destroy)
	a, _ := n.Host("a")
	b, _ := n.Host("b")
	target := a.Addr + ":9000"

	listener := n.Command(a, os.Args[0], "-test.run=^$")
	listener.Env = append(os.Environ(), helperEnv+"=listen "+target)
	out, err := listener.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Process.Kill(); listener.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
		t.Fatalf("listener in namespace: got %q", line)
	}

	fromB := func() string {
		cmd := n.Command(b, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=dial "+target)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("dialer in namespace: %v", err)
		}
		return strings.TrimSpace(string(got))
	}
	check := func(stage string, wantB, wantMachine bool) {
		t.Helper()
		if got := fromB() == "ok"; got != wantB {
			t.Errorf("%s: b reaches a: got %v, want %v", stage, got, wantB)
		}
		if got := dial(target); got != wantMachine {
			t.Errorf("%s: the machine reaches a: got %v, want %v", stage, got, wantMachine)
		}
	}

	check("healthy", true, true)
	if err := n.Drop("b", "a"); err != nil {
		t.Fatal(err)
	}
	check("b to a dropped", false, true)
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	check("healed", true, true)
	if err := n.Drop("a", "b"); err != nil {
		t.Fatal(err)
	}
	check("a to b dropped", false, true) // the responses from a never arrive
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := n.Loss("a", 100); err != nil {
		t.Fatal(err)
	}
	check("all of a's packets lost", false, false)
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	check("healed again", true, true)

	if err := n.Delay("a", 20, 5); err != nil && err != ErrNoNetem {
		t.Errorf("delay: %v", err)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
}

func TestNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root")
	}
	if _, err := Create("x", []string{"a"}); err != ErrNotRoot {
		t.Fatalf("Create without root: got %v, want ErrNotRoot", err)
	}
}
