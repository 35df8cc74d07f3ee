// Package netns builds a small test network out of Linux network namespaces
// and injects network faults into it: one namespace per host on a bridge,
// packet drops between hosts (both ways or one way) and random loss with
// nftables, and delay with netem where the kernel has it. It drives the ip,
// nft and tc programs and needs root.
package netns
