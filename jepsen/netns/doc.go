// Package netns builds a small test network of Linux network namespaces,
// one per host on a bridge, and injects network faults into it. Packet
// drops between hosts (both ways or one way) and random loss use nftables,
// and delay uses netem where the kernel has it. It runs the ip, nft and tc
// programs and needs root.
package netns
