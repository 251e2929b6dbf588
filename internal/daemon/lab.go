package daemon

// The workload lab's control API, which the daemon mounts beside the
// inspection endpoints (server.Options.Routes):
//
//	GET  /api/v1/workloads                     the catalog with each workload's state and parameters
//	GET  /api/v1/workloads/{name}              one workload
//	POST /api/v1/workloads/{name}/start        start it; body {"params": {...}} is optional
//	POST /api/v1/workloads/{name}/stop         stop it
//	POST /api/v1/workloads/{name}/params       restart it with new parameters

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/source"
	"github.com/inspectd/inspectd/internal/workload"
)

// lab serves the control API of a supervisor.
type lab struct {
	sup *workload.Supervisor
}

// route adds the lab's routes to mux.
func (s *lab) route(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/workloads", s.listWorkloads)
	mux.HandleFunc("GET /api/v1/workloads/{name}", s.getWorkload)
	mux.HandleFunc("POST /api/v1/workloads/{name}/start", s.startWorkload)
	mux.HandleFunc("POST /api/v1/workloads/{name}/stop", s.stopWorkload)
	mux.HandleFunc("POST /api/v1/workloads/{name}/params", s.changeParams)
}

func (s *lab) listWorkloads(w http.ResponseWriter, r *http.Request) {
	var out api.WorkloadList
	for _, st := range s.sup.Status() {
		out.Workloads = append(out.Workloads, toAPI(st))
	}
	server.WriteJSON(w, http.StatusOK, out)
}

func (s *lab) getWorkload(w http.ResponseWriter, r *http.Request) {
	st, err := s.sup.StatusOf(r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	server.WriteJSON(w, http.StatusOK, toAPI(st))
}

// The handlers run as the daemon's own goroutines (source.OwnLabel): the
// workloads they start must not inherit that.

func (s *lab) startWorkload(w http.ResponseWriter, r *http.Request) {
	s.withParams(w, r, unowned(s.sup.Start))
}

func (s *lab) changeParams(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if st, err := s.sup.StatusOf(name); err == nil && !st.Running {
		server.WriteError(w, http.StatusConflict, fmt.Sprintf("workload %s is not running: start it with these parameters instead", name))
		return
	}
	s.withParams(w, r, unowned(s.sup.Restart))
}

// withParams decodes the optional StartRequest body and applies fn to it.
func (s *lab) withParams(w http.ResponseWriter, r *http.Request, fn func(string, map[string]any) error) {
	name := r.PathValue("name")
	var req api.StartRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, server.MaxBody))
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			server.WriteError(w, http.StatusBadRequest, `request body: want {"params": {"name": value, ...}}: `+err.Error())
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			server.WriteError(w, http.StatusBadRequest, `request body: want one {"params": {"name": value, ...}} and nothing after it`)
			return
		}
	}
	if err := fn(name, req.Params); err != nil {
		writeErr(w, err)
		return
	}
	st, err := s.sup.StatusOf(name)
	if err != nil {
		writeErr(w, err)
		return
	}
	server.WriteJSON(w, http.StatusOK, toAPI(st))
}

func (s *lab) stopWorkload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.sup.Stop(name); err != nil {
		writeErr(w, err)
		return
	}
	st, _ := s.sup.StatusOf(name)
	server.WriteJSON(w, http.StatusOK, toAPI(st))
}

func toAPI(st workload.Status) api.Workload {
	values := st.Params.Map()
	w := api.Workload{
		Name: st.Spec.Name, Lesson: st.Spec.Lesson, Kind: string(st.Spec.Kind),
		Description: st.Spec.Description, Caps: st.Spec.Caps,
		Params:  make([]api.Param, 0, len(st.Spec.Params)),
		Running: st.Running, Since: st.Since, Operations: st.Ops,
		Panics: st.Panics, Restarts: st.Restarts, LastError: st.LastErr, Detached: st.Detached,
		Rule: st.Spec.Rule, Fix: st.Spec.Fix, ShowsAfterStop: st.Spec.ShowsAfterStop, LeaksForGood: st.Spec.LeaksForGood,
		Figures: st.Figures,
	}
	var ran map[string]any
	if !st.Running {
		ran = st.Ran.Map()
	}
	for _, p := range st.Spec.Params {
		w.Params = append(w.Params, api.Param{
			Name: p.Name, Type: string(p.Type), Help: p.Help,
			Default: workload.Wire(p.Default), Min: workload.Wire(p.Min), Max: workload.Wire(p.Max), Choices: p.Choices,
			Value: values[p.Name], Ran: ran[p.Name],
		})
	}
	return w
}

// writeErr maps supervisor errors to status codes.
func writeErr(w http.ResponseWriter, err error) {
	var pe *workload.ParamError
	switch {
	case errors.As(err, &pe):
		server.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, workload.ErrUnknown):
		server.WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, workload.ErrRunning), errors.Is(err, workload.ErrNotRunning):
		server.WriteError(w, http.StatusConflict, err.Error())
	default:
		server.WriteError(w, http.StatusInternalServerError, err.Error())
	}
}

// unowned runs fn with the goroutine's labels cleared (source.Unowned).
func unowned(fn func(string, map[string]any) error) func(string, map[string]any) error {
	return func(name string, params map[string]any) (err error) {
		source.Unowned(func() { err = fn(name, params) })
		return err
	}
}
