//go:build !amd64 && !arm64 && linux

package sandbox

// archDenied are the denied calls only this architecture has.
var archDenied []uintptr
