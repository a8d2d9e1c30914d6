package ebpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Attach modes, as reported in Stats.Attach.
const (
	AttachTPBTF         = "tp_btf"
	AttachRawTracepoint = "raw_tracepoint"
)

// programs is one loaded pair of programs with the maps they share.
type programs struct {
	Exec   *ebpf.Program
	Exit   *ebpf.Program
	Events *ebpf.Map
	Drops  *ebpf.Map
	links  []link.Link
	mode   string
}

type tpBTFObjects struct {
	Exec   *ebpf.Program `ebpf:"tp_btf_exec"`
	Exit   *ebpf.Program `ebpf:"tp_btf_exit"`
	Events *ebpf.Map     `ebpf:"events"`
	Drops  *ebpf.Map     `ebpf:"drops"`
}

type rawTPObjects struct {
	Exec   *ebpf.Program `ebpf:"raw_tp_exec"`
	Exit   *ebpf.Program `ebpf:"raw_tp_exit"`
	Events *ebpf.Map     `ebpf:"events"`
	Drops  *ebpf.Map     `ebpf:"drops"`
}

// load loads and attaches the tp_btf programs, or the raw_tracepoint ones
// when those cannot be loaded or attached (or when rawOnly is set, for
// tests). ringSize, when not zero, overrides the ring buffer's size (a power
// of two, in bytes).
func load(ringSize uint32, rawOnly bool) (*programs, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("ebpf: lifting the memlock limit: %w", err)
	}
	spec, err := loadProcess()
	if err != nil {
		return nil, fmt.Errorf("ebpf: %w", err)
	}
	if ringSize != 0 {
		spec.Maps[processMapEvents].MaxEntries = ringSize
	}

	var tp tpBTFObjects
	errTP := errors.New("not tried")
	if !rawOnly {
		errTP = spec.LoadAndAssign(&tp, nil)
	}
	if !rawOnly && errTP == nil {
		p := &programs{Exec: tp.Exec, Exit: tp.Exit, Events: tp.Events, Drops: tp.Drops, mode: AttachTPBTF}
		if errTP = p.attach(); errTP == nil {
			return p, nil
		}
		p.close()
	}

	var raw rawTPObjects
	if err := spec.LoadAndAssign(&raw, nil); err != nil {
		return nil, fmt.Errorf("ebpf: loading programs: %w", errors.Join(
			fmt.Errorf("tp_btf: %w", errTP), fmt.Errorf("raw_tracepoint: %w", err)))
	}
	p := &programs{Exec: raw.Exec, Exit: raw.Exit, Events: raw.Events, Drops: raw.Drops, mode: AttachRawTracepoint}
	if err := p.attach(); err != nil {
		p.close()
		return nil, fmt.Errorf("ebpf: attaching programs: %w", errors.Join(
			fmt.Errorf("tp_btf: %w", errTP), fmt.Errorf("raw_tracepoint: %w", err)))
	}
	return p, nil
}

// attach attaches the exit program first, so that no process is seen
// starting without its exit.
func (p *programs) attach() error {
	for _, a := range []struct {
		prog *ebpf.Program
		name string
	}{{p.Exit, "sched_process_exit"}, {p.Exec, "sched_process_exec"}} {
		var l link.Link
		var err error
		if p.mode == AttachTPBTF {
			l, err = link.AttachTracing(link.TracingOptions{Program: a.prog, AttachType: ebpf.AttachTraceRawTp})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.name, Program: a.prog})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

// detach closes the links: no more records are written after it.
func (p *programs) detach() error {
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	return errors.Join(errs...)
}

// close detaches and frees the programs and maps.
func (p *programs) close() error {
	errs := []error{p.detach()}
	for _, c := range []interface{ Close() error }{p.Exec, p.Exit, p.Events, p.Drops} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// drops sums the per-CPU count of records the ring had no room for.
func (p *programs) drops() (uint64, error) {
	var perCPU []uint64
	if err := p.Drops.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("ebpf: reading drops: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}
