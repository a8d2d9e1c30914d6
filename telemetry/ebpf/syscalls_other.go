//go:build !amd64 && !arm64 && linux

package ebpf

// syscallOps is empty where Quarry does not know the syscall numbers: only
// processes and DNS are captured there.
var syscallOps = map[uint32]uint8{}
