// Package dashboards holds the Grafana dashboards of inspectd, written with
// the Grafana Foundation SDK, and the local lab that shows them
// (compose.yaml, prometheus.yml, provisioning/). The JSON under grafana/ is
// generated from this file: edit here, then run `go generate ./dashboards`.
// `go test ./dashboards` checks the JSON against this code, against the
// metrics a real daemon exports and against the provisioning files.
package dashboards

//go:generate go run ./gen

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/grafanapyroscope"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The data sources, as provisioned in provisioning/datasources/datasources.yaml.
const (
	PrometheusUID  = "inspectd-prometheus"
	PrometheusType = "prometheus"
	PyroscopeUID   = "inspectd-pyroscope"
	PyroscopeType  = "grafana-pyroscope-datasource"
)

// ServiceName is the Pyroscope service_name the daemon's profiles carry: the
// default --pyroscope-app.
const ServiceName = "inspectd"

// Job is the Prometheus job that scrapes the daemon (prometheus.yml).
const Job = "inspectd"

// Profile type ids, as Pyroscope names what pyroscope-go pushes
// (name:sample_type:sample_unit:period_type:period_unit).
const (
	ProfileCPU           = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	ProfileAllocSpace    = "memory:alloc_space:bytes:space:bytes"
	ProfileInuseSpace    = "memory:inuse_space:bytes:space:bytes"
	ProfileGoroutines    = "goroutines:goroutine:count:goroutine:count"
	ProfileMutexDuration = "mutex:delay:nanoseconds:contentions:count"
	ProfileBlockDuration = "block:delay:nanoseconds:contentions:count"
	// ProfileGoroutineStates is the goroutine-states profile the daemon
	// pushes itself (internal/daemon/stateprofile.go): sample and period
	// type goroutine_state_time in nanoseconds, which Pyroscope also takes
	// as the profile's name.
	ProfileGoroutineStates = "goroutine_state_time:goroutine_state_time:nanoseconds:goroutine_state_time:nanoseconds"
	// ProfileGoroutineLeak is the goroutineleak profile pyroscope-go
	// pushes (display name goroutine_leak): the goroutines the GC proved
	// blocked for good, by stack.
	ProfileGoroutineLeak = "goroutine_leak:goroutineleak:count:goroutineleak:count"
)

// Dashboard is one generated dashboard: its file name under grafana/ and
// the builder that makes it.
type Dashboard struct {
	File  string
	Build func() (dashboard.Dashboard, error)
}

// All lists the dashboards, in the order of the generated files.
var All = []Dashboard{
	{File: "inspectd-overview.json", Build: Overview},
	{File: "inspectd-flamegraphs.json", Build: FlameGraphs},
}

// JSON renders d as the indented JSON written to grafana/.
func JSON(d dashboard.Dashboard) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func ref(typ, uid string) common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(typ), Uid: cog.ToPtr(uid)}
}

func promDS() common.DataSourceRef { return ref(PrometheusType, PrometheusUID) }
func pyroDS() common.DataSourceRef { return ref(PyroscopeType, PyroscopeUID) }

// sel is the label selector every Prometheus query uses.
const sel = `{job="` + Job + `"}`

// findingsSel selects the findings of both severities; the daemon exports
// every rule with 0 for each while it has none.
const findingsSel = `inspectd_findings{job="` + Job + `", severity=~"warning|critical"}`

// alarm is green at 0 and red from 1 on.
func alarm() *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{
			{Value: nil, Color: "green"},
			{Value: cog.ToPtr(1.0), Color: "red"},
		})
}

func prom(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS()).Expr(expr).LegendFormat(legend).Range()
}

func quantiles(metric string) []cog.Builder[variants.Dataquery] {
	var qs []cog.Builder[variants.Dataquery]
	for _, q := range []struct{ q, legend string }{{"0.5", "p50"}, {"0.9", "p90"}, {"0.99", "p99"}} {
		qs = append(qs, prom(fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(%s_bucket%s[$__rate_interval])))`, q.q, metric, sel), q.legend))
	}
	return qs
}

func series(title, desc, unit string, w uint32, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	for i, t := range targets {
		if q, ok := t.(*prometheus.DataqueryBuilder); ok {
			q.RefId(string(rune('A' + i)))
		}
	}
	return timeseries.NewPanelBuilder().
		Title(title).Description(desc).
		Datasource(promDS()).
		Targets(targets).
		Unit(unit).Min(0).
		Height(8).Span(w).
		FillOpacity(10).
		Legend(legend()).
		Tooltip(tooltip())
}

func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)
}

func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// Overview is the Prometheus dashboard: the Go runtime's scheduler, threads,
// locks and GC as runtime/metrics exports them, and the lab's workloads.
func Overview() (dashboard.Dashboard, error) {
	return dashboard.NewDashboardBuilder("inspectd overview").
		Uid("inspectd-overview").
		Description("The Go runtime of inspectd (runtime/metrics through the Prometheus Go collector) and its workloads.").
		Tags([]string{"inspectd", "go"}).
		Time("now-30m", "now").
		Refresh("10s").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(dashboard.NewDashboardLinkBuilder("Flame graphs").Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"inspectd"}).AsDropdown(false).KeepTime(true)).
		WithRow(dashboard.NewRowBuilder("Go runtime")).
		WithPanel(series("Goroutines by state",
			"Goroutines running, runnable (ready, waiting for a P), waiting (blocked) and not in Go (syscalls, cgo): /sched/goroutines/*.",
			"short", 12,
			prom("go_sched_goroutines_running_goroutines"+sel, "running"),
			prom("go_sched_goroutines_runnable_goroutines"+sel, "runnable"),
			prom("go_sched_goroutines_waiting_goroutines"+sel, "waiting"),
			prom("go_sched_goroutines_not_in_go_goroutines"+sel, "not in Go"),
		).Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(series("Scheduler latency",
			"Time goroutines spend runnable before they run (/sched/latencies): high when CPU-bound goroutines outnumber GOMAXPROCS.",
			"s", 12, quantiles("go_sched_latencies_seconds")...)).
		WithPanel(series("OS threads",
			"Threads of the Go runtime (/sched/threads/total) against GOMAXPROCS: thread-leak and locked threads show here.",
			"short", 8,
			prom("go_sched_threads_total_threads"+sel, "threads"),
			prom("go_sched_gomaxprocs_threads"+sel, "GOMAXPROCS"),
		)).
		WithPanel(series("Mutex wait: goroutines waiting on locks",
			"Goroutines blocked on a sync.Mutex or sync.RWMutex (or threads on one of the runtime's own locks), on average: "+
				"the seconds of waiting per second, the rate of /sync/mutex/wait/total. 2 means two goroutines waiting all the time. "+
				"The runtime measures one wait in 8 and adds it, times 8, when it ends: a lock held long shows in spikes as it is let go, "+
				"and goroutines that never get theirs (a deadlock) add nothing, until the goroutineleak profile is read: "+
				"with goroutines deadlocked on locks, each read (inspectd's, every 30s; pyroscope-go's, every upload) adds "+
				"thousands to millions of seconds at once (Go 1.27.3), a spike that is not waiting. The deadlock finding and the "+
				"flame graphs' leaked goroutines name those goroutines.",
			"short", 8,
			prom("rate(go_sync_mutex_wait_total_seconds_total"+sel+"[$__rate_interval])", "goroutines waiting"),
		).AxisLabel("goroutines waiting")).
		WithPanel(series("GC stop-the-world pauses",
			"Pauses of the world for the GC (/sched/pauses/total/gc).",
			"s", 8, quantiles("go_sched_pauses_total_gc_seconds")...)).
		WithRow(dashboard.NewRowBuilder("Workloads")).
		WithPanel(series("Operations per second",
			"Operations each workload completes: its progress. A flat line on a running workload is a stuck one.",
			"ops", 12,
			prom("sum by (workload) (rate(inspectd_workload_operations_total"+sel+"[1m]))", "{{workload}}"),
		)).
		WithPanel(stat.NewPanelBuilder().
			Title("Workloads running").
			Description("Workloads running now, by kind (healthy lessons, broken scenarios).").
			Datasource(promDS()).
			WithTarget(prometheus.NewDataqueryBuilder().RefId("A").Datasource(promDS()).Expr("sum by (kind) (inspectd_workload_running" + sel + ")").LegendFormat("{{kind}}").Instant()).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeNone).
			Height(8).Span(4)).
		WithPanel(series("Panics and restarts",
			"Panics recovered inside workloads and restarts after a panic or an error, over 5 minutes. The series appear with the first panic.",
			"short", 8,
			prom("sum by (workload) (increase(inspectd_workload_panics_total"+sel+"[5m]))", "panics {{workload}}"),
			prom("sum by (workload) (increase(inspectd_workload_restarts_total"+sel+"[5m]))", "restarts {{workload}}"),
		)).
		WithPanel(series("Pyroscope upload failures",
			"Profiles that pyroscope-go failed to upload or dropped (queue full), over 5 minutes. Exported only while --pyroscope-url is set.",
			"short", 12,
			prom("increase(inspectd_pyroscope_upload_failures_total"+sel+"[5m])", "failed uploads"),
		)).
		WithPanel(series("Goroutines created",
			"Goroutines started per second (/sched/goroutines-created): spawn storms and per-tick goroutines.",
			"short", 12,
			prom("rate(go_sched_goroutines_created_goroutines_total"+sel+"[$__rate_interval])", "created/s"),
		)).
		WithRow(dashboard.NewRowBuilder("Diagnosis")).
		WithPanel(series("Goroutine leaks",
			"Findings of the goroutine-leak rule (inspectd_findings{rule=\"goroutine-leak\"}): goroutines blocked for good on a channel nobody will use again, "+
				"marked by the goroutineleak profile or stuck at one site in growing numbers; one finding per site. "+
				"GET /api/v1/findings names the goroutines and the site; the flame graphs dashboard shows the leaked goroutines by stack.",
			"short", 24,
			prom("sum(inspectd_findings{job=\""+Job+"\", rule=\"goroutine-leak\", severity=~\"warning|critical\"})", "goroutine-leak findings"),
		).Decimals(0).Thresholds(alarm()).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds))).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Findings by rule").
			Description("Current findings of each diagnosis rule (warning and critical; inspectd_findings): one row per rule, green while it finds nothing, red with the number of findings while it does. GET /api/v1/findings says which goroutines and sites each names.").
			Datasource(promDS()).
			WithTarget(prom("sum by (rule) ("+findingsSel+")", "{{rule}}").RefId("A")).
			Thresholds(alarm()).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			Min(0).Decimals(0).
			ShowValue(common.VisibilityModeAuto).
			MergeValues(true).
			RowHeight(0.8).
			Legend(legend()).
			Tooltip(tooltip()).
			Height(10).Span(18)).
		WithPanel(stat.NewPanelBuilder().
			Title("Findings").
			Description("Findings of all the diagnosis rules now, warning and critical.").
			Datasource(promDS()).
			WithTarget(prometheus.NewDataqueryBuilder().RefId("A").Datasource(promDS()).Expr("sum(" + findingsSel + ")").LegendFormat("findings").Instant()).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			Thresholds(alarm()).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			Decimals(0).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeBackground).
			Height(10).Span(6)).
		Build()
}

func pyroQuery(profileType string, queryType string, groupBy []string) *grafanapyroscope.DataqueryBuilder {
	return grafanapyroscope.NewDataqueryBuilder().
		RefId("A").
		Datasource(pyroDS()).
		ProfileTypeId(profileType).
		LabelSelector(`{service_name="` + ServiceName + `", workload=~"${workload:regex}"}`).
		QueryType(queryType).
		GroupBy(groupBy)
}

func flame(title, desc, profileType string) *dashboard.PanelBuilder {
	return dashboard.NewPanelBuilder().
		Type("flamegraph").
		Title(title).Description(desc).
		Datasource(pyroDS()).
		WithTarget(pyroQuery(profileType, "profile", []string{})).
		Height(14).Span(12)
}

// FlameGraphs is the Pyroscope dashboard: flame graphs of the profiles
// pyroscope-go pushes, filtered by the workload label every workload
// goroutine carries.
func FlameGraphs() (dashboard.Dashboard, error) {
	workload := dashboard.NewQueryVariableBuilder("workload").
		Label("workload").
		Description("Values of the pprof label workload in the profiles Pyroscope holds (for every service: the Pyroscope data source's label-value query takes a profile type, not a selector).").
		Datasource(pyroDS()).
		Query(dashboard.StringOrMap{Map: map[string]any{
			"type":          "labelValue",
			"profileTypeId": ProfileCPU,
			"labelName":     "workload",
			"refId":         "PyroscopeVariableQueryEditor-VariableQuery",
		}}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})
	return dashboard.NewDashboardBuilder("inspectd flame graphs").
		Uid("inspectd-flamegraphs").
		Description("Continuous profiles of inspectd in Pyroscope (service_name=\""+ServiceName+"\"), by workload.").
		Tags([]string{"inspectd", "pyroscope"}).
		Time("now-15m", "now").
		Refresh("30s").
		Readonly().
		Link(dashboard.NewDashboardLinkBuilder("Overview").Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"inspectd"}).AsDropdown(false).KeepTime(true)).
		WithVariable(workload).
		WithPanel(timeseries.NewPanelBuilder().
			Title("CPU by workload").
			Description("CPU time per second by workload label: which lesson burns the CPU.").
			Datasource(pyroDS()).
			WithTarget(pyroQuery(ProfileCPU, "metrics", []string{"workload"})).
			Unit("ns").Min(0).FillOpacity(10).
			Legend(legend()).Tooltip(tooltip()).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			Height(8).Span(24)).
		WithPanel(flame("CPU", "On-CPU samples: process_cpu.", ProfileCPU).Span(24)).
		WithPanel(flame("Goroutines", "Goroutines by stack at each upload: leaks grow here.", ProfileGoroutines)).
		WithPanel(flame("Leaked goroutines",
			"The goroutineleak profile (goroutine_leak) at each upload: goroutines the garbage collector proved blocked for good, "+
				"on a channel or lock nothing else can reach, by the stack where they wait. The leak and deadlock workloads fill it.",
			ProfileGoroutineLeak)).
		WithPanel(flame("Allocated bytes", "Bytes allocated over each upload interval: alloc_space.", ProfileAllocSpace)).
		WithPanel(flame("In-use bytes", "Live heap bytes by allocation site at the last GC: inuse_space.", ProfileInuseSpace)).
		WithPanel(flame("Mutex wait", "Time goroutines waited on contended mutexes, charged to the stack that unlocked (sampled, --mutex-profile-fraction).", ProfileMutexDuration)).
		WithPanel(flame("Blocked time", "Time goroutines spent blocked on channels, selects, locks and sleeps (sampled, --block-profile-rate).", ProfileBlockDuration)).
		WithPanel(flame("Goroutine states",
			"Where goroutine time went, from inspectd's own goroutine-states profile (goroutine_state_time, pushed every upload interval): one sample per goroutine and state, weighted by the time it spent in that state, with the goroutine's stack under a root frame naming the state: running, runnable (waiting for a P), syscall, or the wait reason (chan receive, chan send, select, sync.Mutex.Lock, sleep, IO wait, ...; waiting when unknown). The first level splits the time into busy, queued and blocked; above it, which code was in that state.",
			ProfileGoroutineStates).Span(24).Height(16)).
		Build()
}
