//go:build !amd64 && !arm64

package sandbox

// archDenied are the denied calls only this architecture has.
var archDenied []uintptr
