//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Attach modes, as reported in Stats.Attach.
const (
	AttachTPBTF         = "tp_btf"
	AttachRawTracepoint = "raw_tracepoint"
)

// activityPrograms are the activity programs (bpf/activity.h) and the
// captures each serves.
var activityPrograms = []struct {
	names    []string
	captures []string
}{
	{[]string{"tp_btf_sys_exit", "tp_btf_sys_enter"}, []string{CaptureNetwork, CaptureDNS, CaptureFile,
		CaptureProcessAccess, CaptureDriverLoad, CaptureMemfd, CapturePrivilege}},
	{[]string{"tp_btf_net_dev_queue"}, []string{CaptureDNS}},
}

// config is what the kernel side is told before loading.
type config struct {
	ringSize                    uint32
	rawOnly                     bool
	disable                     []string
	fileInterval, fileTolerance uint64 // ns; 0: no limit
	netInterval, netTolerance   uint64
	dnsPort                     uint16
	fmodeCreated                uint32
}

// programs is the loaded programs with the maps they share.
type programs struct {
	Exec, Exit *ebpf.Program
	shared     *ebpf.Collection // every map, created once
	Events     *ebpf.Map
	Drops      *ebpf.Map
	Counters   *ebpf.Map
	activity   []*ebpf.Program
	links      []link.Link
	mode       string
	// missing maps each capture that is not (or not fully) attached to why.
	missing map[string]error
}

type tpBTFObjects struct {
	Exec *ebpf.Program `ebpf:"tp_btf_exec"`
	Exit *ebpf.Program `ebpf:"tp_btf_exit"`
}

type rawTPObjects struct {
	Exec *ebpf.Program `ebpf:"raw_tp_exec"`
	Exit *ebpf.Program `ebpf:"raw_tp_exit"`
}

// load creates the maps, loads and attaches the process programs (tp_btf,
// or raw_tracepoint when those cannot be loaded or attached, or when
// cfg.rawOnly is set, for tests), then each activity program on its own: one
// that fails is left out and its capture reported in missing.
func load(cfg config) (*programs, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("ebpf: lifting the memlock limit: %w", err)
	}
	spec, err := loadProcess()
	if err != nil {
		return nil, fmt.Errorf("ebpf: %w", err)
	}
	if cfg.ringSize != 0 {
		spec.Maps[processMapEvents].MaxEntries = cfg.ringSize
	}
	if cfg.fmodeCreated == 0 {
		cfg.fmodeCreated = 0x100000
	}
	for name, v := range map[string]any{
		"cfg_file_interval_ns": cfg.fileInterval, "cfg_file_burst_ns": cfg.fileTolerance,
		"cfg_net_interval_ns": cfg.netInterval, "cfg_net_burst_ns": cfg.netTolerance,
		"cfg_dns_port": uint32(cfg.dnsPort), "cfg_fmode_created": cfg.fmodeCreated,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("ebpf: setting %s: %w", name, err)
		}
	}
	mapsOnly := spec.Copy()
	mapsOnly.Programs = map[string]*ebpf.ProgramSpec{}
	shared, err := ebpf.NewCollection(mapsOnly)
	if err != nil {
		return nil, fmt.Errorf("ebpf: creating maps: %w", err)
	}
	p := &programs{shared: shared, Events: shared.Maps[processMapEvents], Drops: shared.Maps[processMapDrops],
		Counters: shared.Maps[processMapCounters], missing: map[string]error{}}
	opts := &ebpf.CollectionOptions{MapReplacements: shared.Maps, Cache: btf.NewCache()}

	if err := p.loadProcess(spec, opts, cfg.rawOnly); err != nil {
		p.close()
		return nil, err
	}
	if err := p.loadActivity(spec, opts, cfg.disable); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *programs) loadProcess(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, rawOnly bool) error {
	var tp tpBTFObjects
	errTP := errors.New("not tried")
	if !rawOnly {
		errTP = spec.LoadAndAssign(&tp, opts)
	}
	if !rawOnly && errTP == nil {
		p.Exec, p.Exit, p.mode = tp.Exec, tp.Exit, AttachTPBTF
		if errTP = p.attachProcess(); errTP == nil {
			return nil
		}
		p.detach()
		tp.Exec.Close()
		tp.Exit.Close()
	}

	var raw rawTPObjects
	if err := spec.LoadAndAssign(&raw, opts); err != nil {
		return fmt.Errorf("ebpf: loading programs: %w", errors.Join(
			fmt.Errorf("tp_btf: %w", errTP), fmt.Errorf("raw_tracepoint: %w", err)))
	}
	p.Exec, p.Exit, p.mode = raw.Exec, raw.Exit, AttachRawTracepoint
	if err := p.attachProcess(); err != nil {
		return fmt.Errorf("ebpf: attaching programs: %w", errors.Join(
			fmt.Errorf("tp_btf: %w", errTP), fmt.Errorf("raw_tracepoint: %w", err)))
	}
	return nil
}

// attachProcess attaches the exit program first, so that no process is
// seen starting without its exit.
func (p *programs) attachProcess() error {
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

// loadActivity fills the syscall table for the captures not disabled and
// loads the activity programs they need; a program that cannot load or
// attach leaves its captures in p.missing.
func (p *programs) loadActivity(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, disable []string) error {
	enabled := map[uint8]bool{}
	for capture, ops := range captureOps {
		if slices.Contains(disable, capture) {
			continue
		}
		for _, op := range ops {
			enabled[op] = true
		}
	}
	table := p.shared.Maps["syscall_ops"]
	for nr, op := range syscallOps {
		if enabled[op] {
			if err := table.Put(nr, op); err != nil {
				return fmt.Errorf("ebpf: filling the syscall table: %w", err)
			}
		}
	}
	for _, ap := range activityPrograms {
		var wanted []string
		for _, c := range ap.captures {
			if !slices.Contains(disable, c) {
				wanted = append(wanted, c)
			}
		}
		if len(wanted) == 0 {
			continue
		}
		var err error
		for _, name := range ap.names {
			if err = p.loadHook(spec, opts, name); err != nil {
				err = fmt.Errorf("%s: %w", name, err)
				break
			}
		}
		for _, c := range wanted {
			if err != nil {
				p.missing[c] = err
			} else if _, ok := captureOps[c]; ok && len(syscallOps) == 0 {
				p.missing[c] = fmt.Errorf("syscall numbers unknown on %s", runtime.GOARCH)
			}
		}
	}
	return nil
}

// loadHook loads and attaches one activity program, alone, on the shared
// maps.
func (p *programs) loadHook(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, name string) error {
	ps, ok := spec.Programs[name]
	if !ok {
		return errors.New("not in the object")
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{name: ps.Copy()}
	coll, err := ebpf.NewCollectionWithOptions(one, *opts)
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	prog := coll.DetachProgram(name)
	coll.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		prog.Close()
		return fmt.Errorf("attaching to %s: %w", ps.AttachTo, err)
	}
	p.activity = append(p.activity, prog)
	p.links = append(p.links, l)
	return nil
}

// notCaptured describes the captures that are missing, in order, each with
// the first line of its error.
func (p *programs) notCaptured() []string {
	var out []string
	for _, c := range Captures {
		if err, ok := p.missing[c]; ok {
			msg, _, _ := strings.Cut(err.Error(), "\n")
			out = append(out, c+": "+msg)
		}
	}
	return out
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
	for _, prog := range append([]*ebpf.Program{p.Exec, p.Exit}, p.activity...) {
		if prog == nil {
			continue
		}
		errs = append(errs, prog.Close())
	}
	p.shared.Close()
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

// rateLimited sums the per-CPU counts of records held back by the rate
// limits, by class (file, network, other).
func (p *programs) rateLimited() ([3]uint64, error) {
	var out [3]uint64
	for i := range out {
		var perCPU []uint64
		if err := p.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return out, fmt.Errorf("ebpf: reading counters: %w", err)
		}
		for _, v := range perCPU {
			out[i] += v
		}
	}
	return out, nil
}
