package main

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/rs/zerolog"
)

type fakeService struct {
	name     string
	startErr error
	log      *[]string
}

func (f *fakeService) Name() string { return f.name }

func (f *fakeService) Start(context.Context) error {
	*f.log = append(*f.log, "start "+f.name)
	return f.startErr
}

func (f *fakeService) Stop() error {
	*f.log = append(*f.log, "stop "+f.name)
	return nil
}

func TestServicesStartInOrderStopInReverseSkippingFailures(t *testing.T) {
	var log []string
	s := &services{log: zerolog.Nop(), all: []service{
		&fakeService{name: "a", log: &log},
		&fakeService{name: "unsupported", startErr: errors.New("no eBPF here"), log: &log},
		&fakeService{name: "b", log: &log},
	}}
	s.start(context.Background())
	s.stop()
	s.stop() // a second stop does nothing
	want := []string{"start a", "start unsupported", "start b", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("got %v, want %v", log, want)
	}
}
